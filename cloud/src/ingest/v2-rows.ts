import { hash } from 'node:crypto';
import { inflateRawSync, zstdDecompressSync } from 'node:zlib';
import {
  BATCH_V2_BODY_KEYS,
  batchV2Codecs,
  batchV2Limits,
  fastValidEnvelope,
  isBatchV2,
  isTraceId,
  mayHoldUnstorableText,
} from '@fieldbeam/protocol';
import type { TimeWindow } from './batch-check.js';
import type { RowWriter } from './copy-binary.js';
import { encodedText } from './copy-binary.js';
import type { BatchHead, DecodedMessage } from './decode-batch.js';
import { OBSERVATION_FIELDS } from './observation-fields.js';

/**
 * The common v2 batch straight from its columns to binary COPY rows: no observation object per
 * reading, each dictionary string checked and UTF-8 encoded once per batch, times taken as the epoch
 * milliseconds they travel as. Only the plain case is taken here: a batch every observation of which
 * `checkBatch` would keep (and the fast validator pass) as it stands. For anything else (an
 * observation sent whole in `raw`, a value the fast checks would not pass, a time outside the accepted
 * range, a string that may hold text Postgres refuses, a malformed body) this answers `undefined` and
 * the batch takes the general path (`checkBatch`), which decides what is kept, what is set aside and
 * why; so dead letters and their reasons do not depend on this path. The rows are those the general
 * path writes, byte for byte (v2-rows.test.ts).
 */

/** The canonical form's tag and the spelling of an absent key field (protocol/src/observation-id.ts). */
const ID_TAG = '["fb-obs-1",';

/** The fields this path writes, by number (a switch on numbers is a jump table); -1: unknown. */
const KNOWN = [
  'id',
  'time',
  'received',
  'source',
  'station',
  'variable',
  'unit',
  'edge',
  'sensor',
  'text',
  'trace',
  'value',
  'lat',
  'lon',
  'alt',
  'quality',
] as const;
const FIELD_CODES = Int8Array.from(OBSERVATION_FIELDS, (f) => (KNOWN as readonly string[]).indexOf(f.key));

/** Latest time a wire time (4-digit year) can hold. */
const MAX_WIRE_MS = 253_402_300_799_999;

const utf8 = new TextDecoder('utf-8', { fatal: true });

type Row = Record<string, unknown>;

/** A column of `n` values, or undefined (absent, or not an array of `n`: see `columns`). */
function col(b: Row, name: string, n: number): unknown[] | undefined {
  const c = b[name];
  return Array.isArray(c) && c.length === n ? c : undefined;
}

/** What is known of one dictionary string, worked out once per batch. */
interface Word {
  s: string;
  /** JSON spelling, for the id's canonical form. */
  json: string;
  /** As a binary COPY text field (length word and UTF-8 bytes). */
  field: Uint8Array;
}

/**
 * `new Date(ms).toISOString()` for times of a batch that mostly share a day (and often a time): the
 * day's prefix is kept, only the time of day written. Only for 0 <= ms <= MAX_WIRE_MS.
 */
function isoWriter(): (ms: number) => string {
  let dayStart = -1;
  let prefix = '';
  let lastMs = -1;
  let last = '';
  const two = (x: number) => (x < 10 ? `0${x}` : `${x}`);
  return (ms) => {
    if (ms === lastMs) return last;
    lastMs = ms;
    const inDay = ms - dayStart;
    if (!(dayStart >= 0 && inDay >= 0 && inDay < 86_400_000)) {
      last = new Date(ms).toISOString();
      dayStart = ms - (ms % 86_400_000);
      prefix = last.slice(0, 11);
      return last;
    }
    const msPart = inDay % 1000;
    const sec = (inDay - msPart) / 1000;
    const h = Math.floor(sec / 3600);
    const m = Math.floor(sec / 60) % 60;
    last = `${prefix}${two(h)}:${two(m)}:${two(sec % 60)}.${msPart < 10 ? '00' : msPart < 100 ? '0' : ''}${msPart}Z`;
    return last;
  };
}

/** Decompressed v2 body, or undefined when it is not readable (the general path says why). */
function body(data: Uint8Array): Row | undefined {
  if (data.byteLength > batchV2Limits.maxBytes || !isBatchV2(data)) return undefined;
  const packed = data.subarray(3);
  const bound = { maxOutputLength: batchV2Limits.maxDecodedBytes };
  try {
    const inflated =
      data[2] === batchV2Codecs.zstd
        ? zstdDecompressSync(packed, bound)
        : data[2] === batchV2Codecs.deflate
          ? inflateRawSync(packed, bound)
          : undefined;
    if (!inflated) return undefined;
    const json = utf8.decode(inflated);
    // A `\u0000` or lone-surrogate escape may be text Postgres refuses: the general path looks closer.
    if (mayHoldUnstorableText(json)) return undefined;
    const b: unknown = JSON.parse(json);
    return typeof b === 'object' && b !== null && !Array.isArray(b) ? (b as Row) : undefined;
  } catch {
    return undefined;
  }
}

/** Why the plain path stops: the batch goes the general way. */
class NotPlain extends Error {}
const notPlain = new NotPlain();

/**
 * The rows of a plain v2 batch (see above) published for `edge`, or undefined for one to decode the
 * general way. Never throws.
 */
export function v2Rows(
  data: Uint8Array,
  edge: string,
  window: TimeWindow,
  writer: RowWriter,
): DecodedMessage | undefined {
  const b = body(data);
  if (!b) return undefined;
  for (const k in b) if (!BATCH_V2_BODY_KEYS.has(k)) return undefined;
  const n = b.n;
  if (b.v !== 2 || b.raw !== undefined || typeof n !== 'number' || !Number.isInteger(n)) return undefined;
  if (n < 1 || n > batchV2Limits.maxObservations || b.edge !== edge) return undefined;
  const envelope: Row = { v: 1, edge, seq: b.seq, sent: b.sent, observations: new Array(n) };
  if (b.buffer !== undefined) envelope.buffer = b.buffer;
  if (!fastValidEnvelope(envelope, batchV2Limits.maxObservations)) return undefined;
  const dict = b.dict;
  if (!Array.isArray(dict)) return undefined;
  const words: Word[] = [];
  for (const s of dict) {
    if (typeof s !== 'string') return undefined;
    words.push({ s, json: JSON.stringify(s), field: encodedText(s) });
  }
  try {
    return encode(b, n, envelope, words, window, writer);
  } catch (err) {
    if (err instanceof NotPlain) {
      writer.take(); // what was written of the batch is dropped
      return undefined;
    }
    throw err;
  }
}

function encode(
  b: Row,
  n: number,
  envelope: Row,
  words: Word[],
  window: TimeWindow,
  writer: RowWriter,
): DecodedMessage {
  const required = (name: string) => col(b, name, n) ?? fail();
  const optional = (name: string) => (b[name] === undefined ? undefined : required(name));
  const source = required('source');
  const station = required('station');
  const variable = required('variable');
  const unit = required('unit');
  const value = required('value');
  const time = required('time');
  const received = required('received');
  const sensor = optional('sensor');
  const text = optional('text');
  const trace = optional('trace');
  const lat = optional('lat');
  const lon = optional('lon');
  const alt = optional('alt');
  const quality = optional('quality');
  const edgeField = encodedText(envelope.edge as string);

  // Each dictionary string's fitness for a field, found on first use (undefined: not looked at yet).
  const nameOk: (boolean | undefined)[] = [];
  const unitOk: (boolean | undefined)[] = [];
  const textOk: (boolean | undefined)[] = [];
  const traceOk: (boolean | undefined)[] = [];
  const flagOk: (boolean | undefined)[] = [];
  const word = (x: unknown, ok: (boolean | undefined)[], test: (s: string) => boolean): Word => {
    if (typeof x !== 'number') fail();
    const w = words[x as number];
    if (w === undefined) fail();
    let good = ok[x as number];
    if (good === undefined) {
      good = test((w as Word).s);
      ok[x as number] = good;
    }
    if (!good) fail();
    return w as Word;
  };
  const isName = (s: string) => s.length >= 1 && s.length <= 200;
  const isUnit = (s: string) => s.length <= 64;
  const isText = (s: string) => s.length <= 4096;
  const number = (x: unknown, min: number, max: number): number | undefined => {
    if (x === null || x === undefined) return undefined;
    if (typeof x !== 'number' || !(x >= min && x <= max)) fail();
    return x as number;
  };
  const fromMs = Date.parse(window.from);
  const toMs = Date.parse(window.to);
  const timeText = isoWriter();
  // Distinct strings in order of first use, as the summary lists them; neighbours mostly share them.
  const stations = new Set<string>();
  const sources = new Set<string>();
  const variables = new Set<string>();
  const traces = new Set<string>();
  let lastSta: Word | undefined;
  let lastSrc: Word | undefined;
  let lastVar: Word | undefined;
  let lastTr: Word | undefined;
  let minMs = Number.POSITIVE_INFINITY;
  let maxMs = Number.NEGATIVE_INFINITY;
  let lastT = 0;
  let lastR = 0;
  // The id's canonical form up to the time is shared by neighbours of one series.
  let keyOf: Word[] = [];
  let keyPrefix = '';

  for (let i = 0; i < n; i++) {
    const src = word(source[i], nameOk, isName);
    const sta = word(station[i], nameOk, isName);
    const sx = sensor?.[i];
    const sen = sx === undefined || sx === -1 ? undefined : word(sx, nameOk, isName);
    const vari = word(variable[i], nameOk, isName);
    const un = word(unit[i], unitOk, isUnit);
    const tx = text?.[i];
    const txt = tx === undefined || tx === -1 ? undefined : word(tx, textOk, isText);
    const trx = trace?.[i];
    const tr = trx === undefined || trx === -1 ? undefined : word(trx, traceOk, isTraceId);
    const v = value[i];
    if (!(v === null || (typeof v === 'number' && Number.isFinite(v)))) fail();
    const dt = time[i];
    const dr = received[i];
    if (
      typeof dt !== 'number' ||
      typeof dr !== 'number' ||
      !Number.isSafeInteger(dt) ||
      !Number.isSafeInteger(dr)
    )
      fail();
    lastT += dt as number;
    lastR += dr as number;
    // Inside the accepted range (so a wire time); `received` a wire time too.
    if (!(lastT >= fromMs && lastT <= toMs && lastR >= 0 && lastR <= MAX_WIRE_MS)) fail();
    const la = lat ? number(lat[i], -90, 90) : undefined;
    const lo = lon ? number(lon[i], -180, 180) : undefined;
    const al = alt ? number(alt[i], -Number.MAX_VALUE, Number.MAX_VALUE) : undefined;
    const q = quality?.[i];
    let flags: string[] | undefined;
    if (q !== undefined && q !== null) {
      if (!Array.isArray(q) || q.length > 16) fail();
      flags = (q as unknown[]).map((x) => word(x, flagOk, isUnit).s);
    }
    const iso = timeText(lastT);
    if (keyOf[0] !== src || keyOf[1] !== sta || keyOf[2] !== sen || keyOf[3] !== vari) {
      keyOf = [src, sta, sen as Word, vari];
      keyPrefix = `${ID_TAG}${src.json},${sta.json},${sen ? sen.json : 'null'},${vari.json},"`;
    }
    // JSON spells a finite number as Number::toString does, and -0 as 0 (the id folds -0 to 0).
    const id = hash(
      'sha256',
      `${keyPrefix}${iso}",${v === null ? 'null' : String(v)},${txt ? txt.json : 'null'}]`,
      'hex',
    );

    writer.startRow();
    for (let f = 0; f < FIELD_CODES.length; f++) {
      switch (FIELD_CODES[f]) {
        case 0: // id
          writer.latin1Field(id);
          break;
        case 1: // time
          writer.timestampField(lastT);
          break;
        case 2: // received
          writer.timestampField(lastR);
          break;
        case 3: // source
          writer.encodedField(src.field);
          break;
        case 4: // station
          writer.encodedField(sta.field);
          break;
        case 5: // variable
          writer.encodedField(vari.field);
          break;
        case 6: // unit
          writer.encodedField(un.field);
          break;
        case 7: // edge
          writer.encodedField(edgeField);
          break;
        case 8: // sensor
          if (sen) writer.encodedField(sen.field);
          else writer.nullField();
          break;
        case 9: // text
          if (txt) writer.encodedField(txt.field);
          else writer.nullField();
          break;
        case 10: // trace
          if (tr) writer.encodedField(tr.field);
          else writer.nullField();
          break;
        case 11: // value
          if (v === null) writer.nullField();
          else writer.float8Field(v as number);
          break;
        case 12: // lat
          if (la === undefined) writer.nullField();
          else writer.float8Field(la);
          break;
        case 13: // lon
          if (lo === undefined) writer.nullField();
          else writer.float8Field(lo);
          break;
        case 14: // alt
          if (al === undefined) writer.nullField();
          else writer.float8Field(al);
          break;
        case 15: // quality
          if (flags) writer.textArrayField(flags);
          else writer.nullField();
          break;
        default:
          // A stored field this path does not know yet: the general path writes it.
          fail();
      }
    }
    writer.endRow(iso);

    if (lastT < minMs) minMs = lastT;
    if (lastT > maxMs) maxMs = lastT;
    if (sta !== lastSta) {
      lastSta = sta;
      stations.add(sta.s);
    }
    if (src !== lastSrc) {
      lastSrc = src;
      sources.add(src.s);
    }
    if (vari !== lastVar) {
      lastVar = vari;
      variables.add(vari.s);
    }
    if (tr && tr !== lastTr) {
      lastTr = tr;
      traces.add(tr.s);
    }
  }
  const start = timeText(minMs);
  const end = timeText(maxMs);
  const { observations: _, ...head } = envelope;
  return {
    ok: true,
    head: head as BatchHead,
    rows: writer.take(),
    summary: {
      count: n,
      start,
      end,
      stations: [...stations],
      sources: [...sources],
      variables: [...variables],
    },
    stored: { count: n, traces: [...traces], timeMin: start, timeMax: end },
    rejected: [],
  };
}

function fail(): never {
  throw notPlain;
}
