import { type CborValue, decodeCbor } from './cbor.js';
import { ReadingCollector } from './collector.js';
import { isObject, own, parseJson, utf8 } from './text.js';
import type { DecodeOutcome, Decoder } from './types.js';
import { decimalsOf } from './units.js';
import { CF } from './variables.js';

/**
 * SenML (RFC 8428) packs, JSON or CBOR, and the pre-RFC draft `{"e":[...], "bn":..., "bt":...}`.
 *
 * A resolved SenML name (`bn` + `n`) names a measurement point, and the unit says what it measures:
 * one name may carry `%RH`, `lat` and `lon` in the same pack. So the resolved name becomes the
 * reading's `sensor` and the variable follows the unit (`%RH` -> `relative_humidity`, `lat` ->
 * `latitude`, `Cel` -> `senml:temperature`; no unit -> `senml:value`). That makes a pack resolve to
 * the same series however it splits names between `bn` and `n`. `vs`/`vb`/`vd` are text readings
 * (`senml:text`, `senml:boolean`, `senml:data`); `s` is `<variable>_sum`.
 *
 * Times: `bt + t` at or above 2^28 is absolute epoch seconds; below it is relative to now, i.e. to
 * receipt (flagged `edge_time`); a resolved time of 0 means "now" and is left to the caller.
 */
export function senmlDecoder(): Decoder {
  return ({ payload, receivedMs }) => {
    const pack = readPack(payload);
    if (!pack.ok) return { kind: 'rejected', reason: pack.reason };
    return resolvePack(pack.records, pack.base, receivedMs);
  };
}

/** Units to the variable they measure (RFC 8428 §12.1 symbols plus common SI ones); others: `senml:<unit>`. */
const VARIABLE_BY_UNIT: Readonly<Record<string, string>> = {
  Cel: 'senml:temperature',
  K: 'senml:temperature',
  '%RH': CF.relativeHumidity,
  lat: CF.latitude,
  lon: CF.longitude,
  Pa: 'senml:pressure',
  hPa: 'senml:pressure',
  kPa: 'senml:pressure',
  bar: 'senml:pressure',
  V: 'senml:voltage',
  A: 'senml:current',
  W: 'senml:power',
  VA: 'senml:apparent_power',
  var: 'senml:reactive_power',
  J: 'senml:energy',
  Wh: 'senml:energy',
  kWh: 'senml:energy',
  Hz: 'senml:frequency',
  Ohm: 'senml:resistance',
  lx: 'senml:illuminance',
  '%EL': 'senml:battery_level',
  EL: 'senml:battery_time_left',
  s: 'senml:duration',
  m: 'senml:distance',
  'm/s': 'senml:speed',
  dBm: 'senml:signal_strength',
  count: 'senml:count',
  '/': 'senml:ratio',
  '%': 'senml:percent',
};

function variableForUnit(unit: string | undefined): string {
  if (unit === undefined || unit === '') return 'senml:value';
  return own(VARIABLE_BY_UNIT, unit) ?? `senml:${unit}`;
}

const TWO_POW_28 = 268_435_456;

/** CBOR integer labels (RFC 8428 §6). */
const CBOR_LABELS: Readonly<Record<number, string>> = {
  [-1]: 'bver',
  [-2]: 'bn',
  [-3]: 'bt',
  [-4]: 'bu',
  [-5]: 'bv',
  [-6]: 'bs',
  0: 'n',
  1: 'u',
  2: 'v',
  3: 'vs',
  4: 'vb',
  5: 's',
  6: 't',
  7: 'ut',
  8: 'vd',
};

/** Base fields the pre-RFC draft puts beside its `e` array. */
interface Base {
  bn?: unknown;
  bt?: unknown;
  bu?: unknown;
}

type Pack = { ok: true; records: unknown[]; base: Base } | { ok: false; reason: string };

function readPack(payload: Uint8Array): Pack {
  const first = payload.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  if (first === undefined)
    return { ok: false, reason: 'empty payload: a SenML pack is a JSON or CBOR array' };
  // A CBOR array head is 0x80-0x9f; JSON starts with '[' or '{'. Nothing else is a pack.
  if (first >= 0x80 && first <= 0x9f) return readCborPack(payload);
  const text = utf8(payload);
  if (text === undefined)
    return { ok: false, reason: 'payload is neither UTF-8 SenML JSON nor a CBOR array' };
  const parsed = parseJson(text);
  if (!parsed.ok) return parsed;
  const doc = parsed.value;
  if (Array.isArray(doc)) return { ok: true, records: doc, base: {} };
  if (isObject(doc) && Array.isArray(doc.e)) {
    // Pre-RFC draft: the base fields sit beside the `e` array and apply to all its records.
    return { ok: true, records: doc.e, base: { bn: doc.bn, bt: doc.bt, bu: doc.bu } };
  }
  return {
    ok: false,
    reason: 'SenML pack must be a JSON array of records (RFC 8428) or a draft {"e":[...]} object',
  };
}

function readCborPack(payload: Uint8Array): Pack {
  const decoded = decodeCbor(payload);
  if (!decoded.ok) return decoded;
  if (!Array.isArray(decoded.value)) return { ok: false, reason: 'SenML CBOR pack must be an array of maps' };
  const records = decoded.value.map((rec) => (rec instanceof Map ? cborRecord(rec) : rec));
  return { ok: true, records, base: {} };
}

function cborRecord(rec: Map<CborValue, CborValue>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of rec) {
    const key = typeof k === 'number' ? (CBOR_LABELS[k] ?? `label:${k}`) : String(k);
    out[key] = v instanceof Uint8Array ? Buffer.from(v).toString('base64url') : v;
  }
  return out;
}

function resolvePack(records: unknown[], base: Base, receivedMs: number): DecodeOutcome {
  const baseError = typeErrors(base as Record<string, unknown>);
  if (baseError !== undefined) return { kind: 'rejected', reason: `draft base fields: ${baseError}` };
  const out = new ReadingCollector();
  let bn = typeof base.bn === 'string' ? base.bn : '';
  let bt = typeof base.bt === 'number' ? base.bt : 0;
  let bu = typeof base.bu === 'string' ? base.bu : undefined;
  let bv = 0;
  let bs = 0;
  for (const [i, r] of records.entries()) {
    if (!isObject(r)) {
      out.skip(`[${i}]`, 'record is not an object');
      continue;
    }
    const unknownMust = Object.keys(r).find((k) => k.endsWith('_'));
    if (unknownMust !== undefined) {
      return {
        kind: 'rejected',
        reason: `record ${i}: must-understand field "${unknownMust}" is not supported`,
      };
    }
    const bad = typeErrors(r);
    if (bad !== undefined) return { kind: 'rejected', reason: `record ${i}: ${bad}` };
    if (typeof r.bn === 'string') bn = r.bn;
    if (typeof r.bt === 'number') bt = r.bt;
    if (typeof r.bu === 'string') bu = r.bu;
    if (typeof r.bv === 'number') bv = r.bv;
    if (typeof r.bs === 'number') bs = r.bs;

    if (!['v', 'vs', 'vb', 'vd', 's'].some((k) => k in r)) continue; // a record that only sets bases
    const name = bn + (typeof r.n === 'string' ? r.n : '');
    if (name === '') {
      out.skip(`[${i}]`, 'record has no name (neither bn nor n)');
      continue;
    }
    const opts = { sensor: name, ...recordTime(bt + (typeof r.t === 'number' ? r.t : 0), receivedMs) };
    // `bu` applies only to records without their own `u` (RFC 8428 §4.5.1).
    const unit = typeof r.u === 'string' ? r.u : bu;
    const variable = variableForUnit(unit);
    if ('v' in r) {
      if (r.v === null) out.skip(name, 'no reading: null');
      else out.number(name, variable, addDecimal(bv, r.v as number), unit ?? '', opts);
    }
    if ('s' in r) {
      if (r.s === null) out.skip(`${name} (sum)`, 'no reading: null');
      else out.number(`${name} (sum)`, `${variable}_sum`, addDecimal(bs, r.s as number), unit ?? '', opts);
    }
    if (typeof r.vs === 'string') out.text(name, 'senml:text', r.vs, opts);
    if (typeof r.vb === 'boolean') out.text(name, 'senml:boolean', String(r.vb), opts);
    if (typeof r.vd === 'string') out.text(name, 'senml:data', r.vd, opts);
  }
  return out.outcome();
}

/** `base + v` without float noise (`bv` 0.1 + `v` 0.2 is 0.3). */
function addDecimal(base: number, v: number): number {
  if (base === 0) return v;
  return Number((base + v).toFixed(Math.min(Math.max(decimalsOf(base), decimalsOf(v)), 12)));
}

function recordTime(t: number, receivedMs: number): { timeMs?: number; quality?: string[] } {
  if (t >= TWO_POW_28) return { timeMs: Math.round(t * 1000) };
  if (t === 0) return {};
  return { timeMs: receivedMs + Math.round(t * 1000), quality: ['edge_time'] };
}

const FIELD_TYPES: Readonly<Record<string, string>> = {
  bn: 'string',
  bt: 'number',
  bu: 'string',
  bv: 'number',
  bs: 'number',
  bver: 'number',
  n: 'string',
  u: 'string',
  v: 'number',
  vs: 'string',
  vb: 'boolean',
  vd: 'string',
  s: 'number',
  t: 'number',
  ut: 'number',
};

/** RFC 8428 asks a receiver to reject a pack whose fields have the wrong type; `v: null` is let through as "no reading". */
function typeErrors(rec: Record<string, unknown>): string | undefined {
  for (const [k, want] of Object.entries(FIELD_TYPES)) {
    if (!(k in rec) || rec[k] === undefined) continue;
    const v = rec[k];
    if ((k === 'v' || k === 's') && v === null) continue;
    if (typeof v !== want || (want === 'number' && !Number.isFinite(v))) {
      return `field "${k}" must be a ${want}, got ${JSON.stringify(v)?.slice(0, 30) ?? typeof v}`;
    }
  }
  return undefined;
}
