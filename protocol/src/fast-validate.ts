import { BUFFER_ID_PATTERN, bufferLimits } from './messages.js';
import { isIsoTime, textProblem } from './observation.js';
import { batchLimits } from './streams.js';
import { isTraceId } from './trace-context.js';

/**
 * A hand-written check of an ObservationBatch (`messages.ts`) and its observations (`observation.ts`)
 * that is several times faster than the zod schemas on the collector's ingest hot path. It is allowed
 * to be stricter than the schemas, never looser: ingest runs the zod schema whenever this says no, so
 * the schema stays the judge and supplies the reason. It lives beside the schemas it mirrors so that
 * a field changed there is changed here in the same place; the property test next to it holds the two
 * together.
 */

const HEX64 = /^[0-9a-f]{64}$/;
/**
 * The fields each check knows, written out rather than taken from the schemas: a field added to a
 * schema makes this check say no (and ingest fall back to the schema) until the check learns its
 * value too, instead of letting it through unchecked. A test compares these with the schemas' fields.
 */
export const fastCheckedFields = {
  observation: [
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
  ],
  batch: ['v', 'edge', 'seq', 'sent', 'buffer', 'observations'],
  buffer: ['id', 'start', 'dropped'],
} as const;
const OBS_KEYS = new Set<string>(fastCheckedFields.observation);
const BATCH_KEYS = new Set<string>(fastCheckedFields.batch);
const BUFFER_KEYS = new Set<string>(fastCheckedFields.buffer);

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);
const name = (x: unknown) => typeof x === 'string' && x.length >= 1 && x.length <= 200;
const finite = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const seq = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

function onlyKeys(o: Record<string, unknown>, allowed: Set<string>): boolean {
  for (const k in o) if (!allowed.has(k)) return false;
  return true;
}

const iso = (x: unknown) => typeof x === 'string' && isIsoTime(x);
const storable = (x: unknown) => typeof x !== 'string' || textProblem(x) === undefined;

/** Every string of the observation as Postgres would store it (no NUL, no lone surrogate). */
function textOk(o: Record<string, unknown>): boolean {
  if (!storable(o.source) || !storable(o.edge) || !storable(o.station) || !storable(o.sensor)) return false;
  if (!storable(o.variable) || !storable(o.text) || !storable(o.unit)) return false;
  if (Array.isArray(o.quality)) for (const f of o.quality) if (!storable(f)) return false;
  return true;
}

/**
 * True only for observations the Observation schema accepts that carry `edge`. `checkText` false skips
 * the look at every string for characters Postgres refuses: the caller has ruled them out for the
 * whole message at once (see `mayHoldUnstorableText`).
 */
export function fastValidObservation(o: unknown, edge: string, checkText = true): boolean {
  if (!isObject(o) || !onlyKeys(o, OBS_KEYS)) return false;
  if (typeof o.id !== 'string' || !HEX64.test(o.id)) return false;
  if (!name(o.source) || o.edge !== edge || !name(o.station) || !name(o.variable)) return false;
  if (o.sensor !== undefined && !name(o.sensor)) return false;
  if (!(o.value === null || finite(o.value))) return false;
  if (o.text !== undefined && !(typeof o.text === 'string' && o.text.length <= 4096)) return false;
  if (!(typeof o.unit === 'string' && o.unit.length <= 64)) return false;
  if (!iso(o.time) || !iso(o.received)) return false;
  if (o.lat !== undefined && !(finite(o.lat) && o.lat >= -90 && o.lat <= 90)) return false;
  if (o.lon !== undefined && !(finite(o.lon) && o.lon >= -180 && o.lon <= 180)) return false;
  if (o.alt !== undefined && !finite(o.alt)) return false;
  if (o.quality !== undefined) {
    const q = o.quality;
    if (!Array.isArray(q) || q.length > 16) return false;
    for (const f of q) if (!(typeof f === 'string' && f.length <= 64)) return false;
  }
  if (o.trace !== undefined && !isTraceId(o.trace)) return false;
  return !checkText || textOk(o);
}

/**
 * True only for envelopes the ObservationBatchEnvelope schema accepts (the observations themselves are
 * checked one by one, so that a bad one costs only itself).
 */
export function fastValidEnvelope(
  b: unknown,
  maxObservations: number = batchLimits.maxObservations,
): b is Record<string, unknown> & { observations: unknown[] } {
  if (!isObject(b) || !onlyKeys(b, BATCH_KEYS)) return false;
  if (b.v !== 1 || typeof b.edge !== 'string' || b.edge.length < 1) return false;
  const s = b.seq;
  if (!Array.isArray(s) || s.length !== 2 || !seq(s[0]) || !seq(s[1]) || s[0] > s[1]) return false;
  if (!iso(b.sent)) return false;
  if (b.buffer !== undefined && !bufferOk(b.buffer)) return false;
  const obs = b.observations;
  return Array.isArray(obs) && obs.length >= 1 && obs.length <= maxObservations;
}

/** The batch's optional buffer account (`BatchBuffer`). */
function bufferOk(x: unknown): boolean {
  if (!isObject(x) || !onlyKeys(x, BUFFER_KEYS)) return false;
  if (typeof x.id !== 'string' || !BUFFER_ID_PATTERN.test(x.id)) return false;
  if (!seq(x.start) || x.start < 1) return false;
  const d = x.dropped;
  if (d === undefined) return true;
  if (!Array.isArray(d) || d.length > bufferLimits.maxDroppedRanges) return false;
  for (const r of d)
    if (!Array.isArray(r) || r.length !== 2 || !seq(r[0]) || !seq(r[1]) || r[0] > r[1]) return false;
  return true;
}

/** True only for values the ObservationBatch schema accepts (may say false for some it accepts). */
export function fastValidBatch(b: unknown): boolean {
  if (!fastValidEnvelope(b)) return false;
  for (const o of b.observations) if (!fastValidObservation(o, b.edge as string)) return false;
  return true;
}

const UNSTORABLE_ESCAPE = /\\u(?:0000|[dD][89a-fA-F])/;

/**
 * In JSON text a NUL or a lone surrogate can only be written as a `\u` escape (`\u0000`, `\udXXX`),
 * so a message without one needs no character-by-character look at its strings. (A pair written as
 * escapes, or an escaped backslash before `u0000`, only costs the closer look.)
 */
export function mayHoldUnstorableText(json: string): boolean {
  return UNSTORABLE_ESCAPE.test(json);
}
