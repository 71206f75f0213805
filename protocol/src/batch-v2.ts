import { constants, deflateRawSync, inflateRawSync, zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import type { ObservationBatchEnvelope } from './messages.js';
import { isIsoTime } from './observation.js';
import { observationId } from './observation-id.js';

/**
 * Protocol v2 observation batches: the same `ObservationBatch` as v1, written column by column and
 * compressed as one block.
 *
 * On the wire: 3 bytes of tag, then the compressed body.
 *   byte 0: 0xFB (never the first byte of UTF-8 text, so a v1 JSON batch is never mistaken for one)
 *   byte 1: 0x02 (the version)
 *   byte 2: the codec of the rest: 1 zstd, 2 raw deflate
 * The tag travels with the bytes (dead letters, golden vectors, a replayed stream), where a NATS header
 * would be lost.
 *
 * The body is JSON: the batch's envelope fields (`v` 2), `n` observations, `dict` (every distinct
 * string once) and one array of length `n` per field:
 *   source, station, sensor, variable, unit, text, trace: index into `dict` (-1: the field is absent)
 *   value: the number or null
 *   time, received: epoch milliseconds, the first absolute and each later one minus the one before
 *   lat, lon, alt: the number or null (absent); quality: null or an array of `dict` indexes
 * Columns whose values are all absent are left out (so a batch without trace ids has no `trace`
 * column, and bodies written before it existed read as before); the readings of one message share
 * one trace-id, which the dictionary holds once. `edge` is the batch's own. The observation `id`
 * is not sent: it is a hash of the fields, so the receiver computes it (saving 70 bytes a reading,
 * half of what compression leaves of a v1 reading). An observation the columns cannot hold exactly
 * (an unknown field, a time not in the wire form, a field of the wrong type) travels whole in `raw`
 * as `[index, observation]`, its id with it, and is judged by the receiver as a v1 one would be.
 *
 * A v2 batch is bounded three ways: observations (`maxObservations`), bytes on the wire (`maxBytes`),
 * and bytes once decompressed (`maxDecodedBytes`, enforced while decompressing, so a small message
 * that inflates to gigabytes is refused after `maxDecodedBytes`).
 */
export const batchV2Limits = {
  maxObservations: 5000,
  /** Compressed, tag included: below nats-server's default `max_payload` (1 MiB). */
  maxBytes: 768 * 1024,
  maxDecodedBytes: 2 * 1024 * 1024,
  /**
   * Bytes of stored observation JSON an encoder puts in one batch: the columns are never larger than
   * those texts (no keys, no ids), and compression adds at most ~0.4% to incompressible input, so a
   * batch cut here always fits `maxBytes`.
   */
  maxRowBytes: 768 * 1024 - 16 * 1024,
} as const;

export const BATCH_V2_MAGIC = 0xfb;
export const BATCH_V2_VERSION = 0x02;
export const batchV2Codecs = { zstd: 1, deflate: 2 } as const;
export type BatchV2Codec = keyof typeof batchV2Codecs;

/** The encodings an edge may send: `v1` JSON, `v2` columns compressed with zstd. */
export const BATCH_ENCODINGS = ['v1', 'v2'] as const;
export type BatchEncoding = (typeof BATCH_ENCODINGS)[number];

/** True when `data` carries the v2 tag (it may still be damaged: see `decodeBatchV2`). */
export function isBatchV2(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === BATCH_V2_MAGIC && data[1] === BATCH_V2_VERSION;
}

/** The batch's fields other than its observations, as in v1 (`v` is written as 2 on the wire). */
export type BatchHead = Omit<ObservationBatchEnvelope, 'observations' | 'v'>;

const STRING_COLUMNS = ['source', 'station', 'sensor', 'variable', 'unit', 'text', 'trace'] as const;
const NUMBER_COLUMNS = ['lat', 'lon', 'alt'] as const;
const COLUMNAR_KEYS = new Set<string>([
  'id',
  'source',
  'edge',
  'station',
  'sensor',
  'variable',
  'value',
  'text',
  'unit',
  'time',
  'received',
  'lat',
  'lon',
  'alt',
  'quality',
  'trace',
]);
const REQUIRED_STRINGS = new Set(['source', 'station', 'variable', 'unit']);

type Row = Record<string, unknown>;

/** True when the columns hold this observation exactly (else it travels in `raw`). */
function columnar(o: unknown, edge: string): o is Row {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return false;
  const r = o as Row;
  for (const k in r) if (!COLUMNAR_KEYS.has(k)) return false;
  if (r.edge !== edge || typeof r.id !== 'string') return false;
  for (const c of STRING_COLUMNS) {
    const v = r[c];
    if (v === undefined ? REQUIRED_STRINGS.has(c) : typeof v !== 'string') return false;
  }
  if (!(r.value === null || (typeof r.value === 'number' && Number.isFinite(r.value)))) return false;
  for (const c of NUMBER_COLUMNS) {
    const v = r[c];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v))) return false;
  }
  if (r.quality !== undefined && !(Array.isArray(r.quality) && r.quality.every((q) => typeof q === 'string')))
    return false;
  return typeof r.time === 'string' && typeof r.received === 'string';
}

/**
 * Epoch milliseconds of a wire time, or undefined when it is not one (then `new Date(ms).toISOString()`
 * would not give it back). Readings of a batch mostly share times, so the last answer is kept.
 */
function timeReader(): (s: string) => number | undefined {
  let lastText = '';
  let lastMs: number | undefined;
  return (s) => {
    if (s !== lastText) {
      lastText = s;
      lastMs = isIsoTime(s) ? Date.parse(s) : undefined;
    }
    return lastMs;
  };
}

/**
 * `new Date(ms).toISOString()`, faster for the times of a batch, which mostly fall on one day: the
 * day's prefix is kept and only the time of day is written.
 */
function isoWriter(): (ms: number) => string {
  let dayStart = Number.NaN;
  let prefix = '';
  const two = (x: number) => (x < 10 ? `0${x}` : `${x}`);
  return (ms) => {
    const inDay = ms - dayStart;
    if (!(inDay >= 0 && inDay < 86_400_000)) {
      const full = new Date(ms).toISOString();
      // Years outside 0000-9999 are written with a sign and six digits: not the wire form, left whole.
      if (full.length !== 24) return full;
      dayStart = ms - (((ms % 86_400_000) + 86_400_000) % 86_400_000);
      prefix = full.slice(0, 11);
      return full;
    }
    const msPart = inDay % 1000;
    const sec = Math.floor(inDay / 1000);
    const h = Math.floor(sec / 3600);
    const m = Math.floor(sec / 60) % 60;
    return `${prefix}${two(h)}:${two(m)}:${two(sec % 60)}.${msPart < 10 ? '00' : msPart < 100 ? '0' : ''}${msPart}Z`;
  };
}

export interface EncodeV2Options {
  codec?: BatchV2Codec;
  /** zstd 1-19 / deflate 1-9; default 3 (zstd) or 6 (deflate). */
  level?: number;
}

/**
 * The v2 body (uncompressed JSON text) of a batch. `observations` are objects, or the JSON texts they
 * were stored as (each is parsed once here).
 */
export function batchV2Body(head: BatchHead, observations: readonly (string | unknown)[]): string {
  const n = observations.length;
  const dict: string[] = [];
  const index = new Map<string, number>();
  const code = (s: string) => {
    let i = index.get(s);
    if (i === undefined) {
      i = dict.length;
      dict.push(s);
      index.set(s, i);
    }
    return i;
  };
  // Neighbouring readings mostly share a column's string: each column's last one is tried first.
  const lastWord: (string | undefined)[] = STRING_COLUMNS.map(() => undefined);
  const lastCode: number[] = STRING_COLUMNS.map(() => -1);
  const strings = Object.fromEntries(STRING_COLUMNS.map((c) => [c, new Array<number>(n)])) as Record<
    (typeof STRING_COLUMNS)[number],
    number[]
  >;
  const numbers = Object.fromEntries(NUMBER_COLUMNS.map((c) => [c, new Array<number | null>(n)])) as Record<
    (typeof NUMBER_COLUMNS)[number],
    (number | null)[]
  >;
  const value = new Array<number | null>(n);
  const time = new Array<number>(n);
  const received = new Array<number>(n);
  const quality = new Array<number[] | null>(n);
  const present = new Set<string>();
  const raw: [number, unknown][] = [];
  let lastTime = 0;
  let lastReceived = 0;
  const timeOf = timeReader();
  const receivedOf = timeReader();
  for (let i = 0; i < n; i++) {
    const item = observations[i];
    const o: unknown = typeof item === 'string' ? JSON.parse(item) : item;
    const t = columnar(o, head.edge) ? timeOf(o.time as string) : undefined;
    const r = t === undefined ? undefined : receivedOf((o as Row).received as string);
    if (t === undefined || r === undefined) {
      raw.push([i, o]);
      for (const c of STRING_COLUMNS) strings[c][i] = -1;
      for (const c of NUMBER_COLUMNS) numbers[c][i] = null;
      value[i] = null;
      quality[i] = null;
      time[i] = 0;
      received[i] = 0;
      continue;
    }
    const row = o as Row;
    for (let k = 0; k < STRING_COLUMNS.length; k++) {
      const c = STRING_COLUMNS[k] as (typeof STRING_COLUMNS)[number];
      const s = row[c] as string | undefined;
      if (s === undefined) strings[c][i] = -1;
      else if (s === lastWord[k]) strings[c][i] = lastCode[k] as number;
      else {
        const x = code(s);
        strings[c][i] = x;
        lastWord[k] = s;
        lastCode[k] = x;
        present.add(c);
      }
    }
    for (const c of NUMBER_COLUMNS) {
      const v = row[c] as number | undefined;
      numbers[c][i] = v ?? null;
      if (v !== undefined) present.add(c);
    }
    value[i] = row.value as number | null;
    const q = row.quality as string[] | undefined;
    quality[i] = q ? q.map(code) : null;
    if (q) present.add('quality');
    time[i] = t - lastTime;
    received[i] = r - lastReceived;
    lastTime = t;
    lastReceived = r;
  }
  const body: Record<string, unknown> = { ...head, v: 2, n, dict };
  for (const c of STRING_COLUMNS) if (REQUIRED_STRINGS.has(c) || present.has(c)) body[c] = strings[c];
  body.value = value;
  body.time = time;
  body.received = received;
  for (const c of NUMBER_COLUMNS) if (present.has(c)) body[c] = numbers[c];
  if (present.has('quality')) body.quality = quality;
  if (raw.length > 0) body.raw = raw;
  return JSON.stringify(body);
}

/**
 * The output buffer a compression call takes from node's Buffer pool: by default 16 KiB per call,
 * whatever the size of the batch. A sender of small batches (an edge at 1,000 readings/s sends one
 * every commit or two) then churns through 64 KiB pool slabs, off-heap memory that V8 counts toward
 * its limits: in the edge's buffer thread that started a full mark-compact about once a second. Sized
 * to the body instead (compressed JSON is smaller than its text; a larger output only takes a second
 * chunk), within zlib's bounds.
 */
function outputChunkBytes(bodyBytes: number): number {
  return Math.min(constants.Z_DEFAULT_CHUNK, Math.max(constants.Z_MIN_CHUNK, bodyBytes + 64));
}

/** A whole v2 message: tag and compressed body. */
export function encodeBatchV2(
  head: BatchHead,
  observations: readonly (string | unknown)[],
  opts: EncodeV2Options = {},
): Uint8Array {
  const codec = opts.codec ?? 'zstd';
  const body = Buffer.from(batchV2Body(head, observations), 'utf8');
  const chunkSize = outputChunkBytes(body.length);
  const packed =
    codec === 'zstd'
      ? zstdCompressSync(body, {
          chunkSize,
          params: { [constants.ZSTD_c_compressionLevel]: opts.level ?? 3 },
        })
      : deflateRawSync(body, { chunkSize, level: opts.level ?? 6 });
  const out = new Uint8Array(3 + packed.length);
  out[0] = BATCH_V2_MAGIC;
  out[1] = BATCH_V2_VERSION;
  out[2] = batchV2Codecs[codec];
  out.set(packed, 3);
  return out;
}

export type DecodedBatchV2 =
  | { ok: false; reason: string }
  | {
      ok: true;
      /** The batch as v1 would carry it (`v` 1, each observation with its id). */
      envelope: ObservationBatchEnvelope;
      /** The decompressed body, for checks that look at the text as a whole. */
      json: string;
      /**
       * Indexes of observations that travelled whole (`raw`): their ids were sent and must be checked
       * against their fields; every other id was computed here from the fields.
       */
      sentIds: ReadonlySet<number>;
    };

const utf8 = new TextDecoder('utf-8', { fatal: true });
const fail = (reason: string): DecodedBatchV2 => ({ ok: false, reason: `v2 batch: ${reason}` });

/** Why decoding failed, as a message that names the cause. */
class Malformed extends Error {}

function column(body: Row, name: string, n: number, required: boolean): unknown[] | undefined {
  const c = body[name];
  if (c === undefined && !required) return undefined;
  if (!Array.isArray(c) || c.length !== n)
    throw new Malformed(`column ${name} is not an array of ${n} values`);
  return c;
}

/**
 * A v2 message back to the batch v1 would carry, or why it cannot be read (bad tag, unknown codec,
 * over a bound, damaged compression, malformed columns). Never throws. The observations are not
 * validated here: the receiver checks each one as it checks a v1 batch's.
 */
export function decodeBatchV2(data: Uint8Array): DecodedBatchV2 {
  if (!isBatchV2(data)) return fail('no v2 tag (0xFB 0x02) at the start');
  if (data.byteLength > batchV2Limits.maxBytes) {
    return fail(`${data.byteLength} bytes, over the limit of ${batchV2Limits.maxBytes}`);
  }
  const codec = data[2];
  const packed = data.subarray(3);
  let inflated: Buffer;
  try {
    const bound = { maxOutputLength: batchV2Limits.maxDecodedBytes };
    if (codec === batchV2Codecs.zstd) inflated = zstdDecompressSync(packed, bound);
    else if (codec === batchV2Codecs.deflate) inflated = inflateRawSync(packed, bound);
    else return fail(`unknown codec ${codec ?? 'none'} (1 zstd, 2 deflate)`);
  } catch (err) {
    if (err instanceof RangeError || (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      return fail(`decompresses to more than ${batchV2Limits.maxDecodedBytes} bytes`);
    }
    return fail(`compressed body unreadable (${(err as Error).message})`);
  }
  let json: string;
  let body: unknown;
  try {
    json = utf8.decode(inflated);
    body = JSON.parse(json);
  } catch {
    return fail('body is not UTF-8 JSON');
  }
  try {
    return { ok: true, json, ...observationsOf(body) };
  } catch (err) {
    if (err instanceof Malformed) return fail(err.message);
    return fail(`body unreadable (${(err as Error).message})`);
  }
}

function observationsOf(body: unknown): { envelope: ObservationBatchEnvelope; sentIds: Set<number> } {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new Malformed('body is not an object');
  const b = body as Row;
  if (b.v !== 2) throw new Malformed(`body says version ${JSON.stringify(b.v)}, expected 2`);
  const n = b.n;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > batchV2Limits.maxObservations) {
    throw new Malformed(`n must be 1-${batchV2Limits.maxObservations} observations`);
  }
  const dict = b.dict;
  if (!Array.isArray(dict) || !dict.every((s) => typeof s === 'string')) {
    throw new Malformed('dict is not an array of strings');
  }
  const edge = b.edge;
  const strings = STRING_COLUMNS.map((c) => [c, column(b, c, n, REQUIRED_STRINGS.has(c))] as const);
  const numbers = NUMBER_COLUMNS.map((c) => [c, column(b, c, n, false)] as const);
  const value = column(b, 'value', n, true) as unknown[];
  const time = column(b, 'time', n, true) as unknown[];
  const received = column(b, 'received', n, true) as unknown[];
  const quality = column(b, 'quality', n, false);
  const raw = new Map<number, unknown>();
  if (b.raw !== undefined) {
    if (!Array.isArray(b.raw)) throw new Malformed('raw is not an array');
    for (const entry of b.raw) {
      const i = Array.isArray(entry) && entry.length === 2 ? entry[0] : undefined;
      if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= n || raw.has(i)) {
        throw new Malformed('raw holds an entry that is not [index, observation] for a new index below n');
      }
      raw.set(i, (entry as unknown[])[1]);
    }
  }
  const word = (col: string, i: number, x: unknown): string | undefined => {
    if (x === -1) return undefined;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= dict.length) {
      throw new Malformed(`${col}[${i}] is not an index into dict`);
    }
    return dict[x] as string;
  };
  const millis = (col: string, i: number, x: unknown, last: number): number => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x))
      throw new Malformed(`${col}[${i}] is not whole milliseconds`);
    const t = last + x;
    if (!(Math.abs(t) <= 8.64e15)) throw new Malformed(`${col}[${i}] is outside the dates a time can hold`);
    return t;
  };
  const observations: unknown[] = new Array(n);
  const [source, station, sensor, variable, unit, text, trace] = strings.map(([, col]) => col);
  const [lat, lon, alt] = numbers.map(([, col]) => col);
  const timeText = isoWriter();
  const receivedText = isoWriter();
  let lastTime = 0;
  let lastReceived = 0;
  for (let i = 0; i < n; i++) {
    if (raw.has(i)) {
      observations[i] = raw.get(i);
      continue;
    }
    lastTime = millis('time', i, time[i], lastTime);
    lastReceived = millis('received', i, received[i], lastReceived);
    // Fields in the order of the Observation schema (and of the edge's stored JSON), optional ones
    // only when present: observations of one kind share one object shape.
    const src = word('source', i, source?.[i]);
    const sta = word('station', i, station?.[i]);
    const sen = sensor ? word('sensor', i, sensor[i]) : undefined;
    const vari = word('variable', i, variable?.[i]);
    const txt = text ? word('text', i, text[i]) : undefined;
    const un = word('unit', i, unit?.[i]);
    if (src === undefined || sta === undefined || vari === undefined || un === undefined) {
      throw new Malformed(`observation ${i} lacks one of source, station, variable, unit`);
    }
    const t = timeText(lastTime);
    const val = value[i];
    const o: Row = {
      id: observationId({
        source: src,
        station: sta,
        sensor: sen,
        variable: vari,
        time: t,
        value: val as number | null,
        text: txt,
      }),
      source: src,
      edge,
      station: sta,
    };
    if (sen !== undefined) o.sensor = sen;
    o.variable = vari;
    o.value = val;
    if (txt !== undefined) o.text = txt;
    o.unit = un;
    o.time = t;
    o.received = receivedText(lastReceived);
    if (lat && lat[i] !== null) o.lat = lat[i];
    if (lon && lon[i] !== null) o.lon = lon[i];
    if (alt && alt[i] !== null) o.alt = alt[i];
    const q = quality?.[i];
    if (q !== undefined && q !== null) {
      if (!Array.isArray(q)) throw new Malformed(`quality[${i}] is not null or an array of dict indexes`);
      const flags = q.map((x) => word('quality', i, x));
      if (flags.includes(undefined)) throw new Malformed(`quality[${i}] holds -1`);
      o.quality = flags;
    }
    const tr = trace ? word('trace', i, trace[i]) : undefined;
    if (tr !== undefined) o.trace = tr;
    observations[i] = o;
  }
  const envelope: Row = { v: 1, edge, seq: b.seq, sent: b.sent, observations };
  if (b.buffer !== undefined) envelope.buffer = b.buffer;
  // Anything else in the body is refused by the envelope schema, as in v1.
  for (const k in b) {
    if (!BATCH_V2_BODY_KEYS.has(k)) throw new Malformed(`unknown field ${k}`);
  }
  return { envelope: envelope as unknown as ObservationBatchEnvelope, sentIds: new Set(raw.keys()) };
}

/** Every field a v2 body may have: anything else makes the batch malformed. */
export const BATCH_V2_BODY_KEYS: ReadonlySet<string> = new Set([
  'v',
  'edge',
  'seq',
  'sent',
  'buffer',
  'n',
  'dict',
  ...STRING_COLUMNS,
  ...NUMBER_COLUMNS,
  'value',
  'time',
  'received',
  'quality',
  'raw',
]);
