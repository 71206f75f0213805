import { HttpError } from '../http-api.js';

/** Parsers for OGC API query parameters; each throws an HttpError 400 that says what is wrong. */

const bad = (message: string) => new HttpError(400, message);

/** `bbox=minLon,minLat,maxLon,maxLat` (WGS84); no antimeridian crossing. */
export function parseBbox(text: string | null): [number, number, number, number] | undefined {
  if (text === null) return undefined;
  const texts = text.split(',').map((s) => s.trim());
  const parts = texts.map(Number);
  // Number('') is 0: an empty part is refused rather than read as zero.
  if (parts.length !== 4 || texts.some((t) => t === '') || parts.some((n) => !Number.isFinite(n))) {
    throw bad('bbox: expected four numbers minLon,minLat,maxLon,maxLat');
  }
  const [minX, minY, maxX, maxY] = parts as [number, number, number, number];
  if (minX < -180 || maxX > 180 || minY < -90 || maxY > 90) throw bad('bbox: outside -180..180, -90..90');
  if (minX > maxX || minY > maxY)
    throw bad('bbox: min must not exceed max (antimeridian crossing is not supported)');
  return [minX, minY, maxX, maxY];
}

const INSTANT =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-](\d{2}):(\d{2})))?$/;

/** Earliest and latest instants a query may name: years 0000-9999, which Postgres and JS both hold. */
const MIN_TIME_MS = Date.parse('0000-01-01T00:00:00Z');
const MAX_TIME_MS = Date.parse('9999-12-31T23:59:59.999Z');
const inRange = (ms: number) => Number.isFinite(ms) && ms >= MIN_TIME_MS && ms <= MAX_TIME_MS;

const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();

function instant(text: string): Date {
  const m = INSTANT.exec(text);
  if (!m) throw bad(`datetime: "${text}" is not an RFC 3339 date or date-time`);
  const [, y, mo, d, h = '0', mi = '0', sec = '0', , oh = '0', om = '0'] = m;
  // JS would roll 2026-02-31 over to March 3rd; a date that does not exist is refused instead.
  const year = Number(y);
  const month = Number(mo);
  const real =
    month >= 1 &&
    month <= 12 &&
    Number(d) >= 1 &&
    Number(d) <= daysIn(year, month) &&
    Number(h) <= 23 &&
    Number(mi) <= 59 &&
    Number(sec) <= 59 &&
    Number(oh) <= 23 &&
    Number(om) <= 59;
  if (!real) throw bad(`datetime: "${text}" is not a date that exists`);
  const t = new Date(text.length === 10 ? `${text}T00:00:00Z` : text);
  if (!inRange(t.getTime())) throw bad(`datetime: "${text}" is outside years 0000-9999`);
  return t;
}

/**
 * `datetime=` an instant, or an interval `start/end` with `..` (or empty) for an open end. Returns an
 * inclusive range; an instant matches exactly that time.
 */
export function parseDatetime(text: string | null): { from?: Date; to?: Date } | undefined {
  if (text === null) return undefined;
  if (!text.includes('/')) {
    const t = instant(text);
    return { from: t, to: t };
  }
  const [a, b, ...rest] = text.split('/');
  if (rest.length > 0) throw bad('datetime: an interval has exactly one "/"');
  const open = (s: string | undefined) => s === undefined || s === '' || s === '..';
  const from = open(a) ? undefined : instant(a as string);
  const to = open(b) ? undefined : instant(b as string);
  if (from && to && from > to) throw bad('datetime: the interval ends before it starts');
  return { ...(from ? { from } : {}), ...(to ? { to } : {}) };
}

/**
 * `limit`: a page size. One above `max` is reduced to it, as OGC API - Features asks (the answer says
 * so, see `reducedFrom`); one that is not a positive integer is refused.
 */
export function parseLimit(
  text: string | null,
  max: number,
  fallback = 100,
): { limit: number; reducedFrom?: number } {
  if (text === null) return { limit: Math.min(fallback, max) };
  // Digits only (Number() would also take '1e3', '0x10' and ' 5 '), few enough to be exact.
  if (!/^\d{1,15}$/.test(text) || Number(text) < 1) throw bad('limit: expected a positive integer');
  const n = Number(text);
  return n > max ? { limit: max, reducedFrom: n } : { limit: n };
}

/** EDR `coords=POINT(lon lat)`. */
export function parsePoint(text: string | null): { lon: number; lat: number } {
  if (text === null) throw bad('coords: required, e.g. coords=POINT(7.1 46.2)');
  const m = /^\s*POINT\s*\(\s*(-?[\d.]+(?:e-?\d+)?)\s+(-?[\d.]+(?:e-?\d+)?)\s*\)\s*$/i.exec(text);
  const lon = Number(m?.[1]);
  const lat = Number(m?.[2]);
  if (!m || !Number.isFinite(lon) || !Number.isFinite(lat)) throw bad('coords: expected POINT(lon lat)');
  if (lon < -180 || lon > 180 || lat < -90 || lat > 90) throw bad('coords: outside -180..180, -90..90');
  return { lon, lat };
}

/** Units of `within-units`, in km. A Map: a name such as `constructor` must not find a prototype member. */
const KM_PER_UNIT: ReadonlyMap<string, number> = new Map([
  ['km', 1],
  ['m', 0.001],
  ['mi', 1.609344],
]);

/** EDR `within` with `within-units` (km, m, mi); returned in km, bounded. */
export function parseWithinKm(within: string | null, units: string | null, fallbackKm: number): number {
  if (within === null) return fallbackKm;
  const n = Number(within);
  if (within.trim() === '' || !Number.isFinite(n) || n < 0)
    throw bad('within: expected a non-negative number');
  const factor = KM_PER_UNIT.get((units ?? 'km').toLowerCase());
  if (factor === undefined) throw bad(`within-units: one of ${[...KM_PER_UNIT.keys()].join(', ')}`);
  const km = n * factor;
  if (km > 1000) throw bad('within: at most 1000 km');
  return km;
}

/**
 * Keyset cursor of the items paging: the last row's time (ms), id and edge (a
 * subject token, see protocol's subjects). Rows are keyed (time, id,
 * edge), so two edges that sent the same reading are two rows, and the edge breaks the tie. A cursor
 * made before the edge was part of it reads as edge '', which sorts before every edge.
 */
export function encodeCursor(timeMs: number, id: string, edge: string): string {
  // An aggregated dataset's rows have no edge: (time, id) orders them.
  return Buffer.from(edge ? `${timeMs}_${id}_${edge}` : `${timeMs}_${id}`).toString('base64url');
}
export function parseCursor(text: string | null): { time: Date; id: string; edge: string } | undefined {
  if (text === null) return undefined;
  // Ids are 64 hex (an observation) or 32 hex (an interval of an aggregated dataset).
  const m = /^(-?\d+)_([0-9a-f]{64}|[0-9a-f]{32})(?:_([A-Za-z0-9_-]{1,64}))?$/.exec(
    Buffer.from(text, 'base64url').toString(),
  );
  // The time goes to Postgres as a bind parameter: one it cannot hold would be a server error.
  if (!m || !inRange(Number(m[1]))) throw bad('cursor: not a cursor this server made');
  return { time: new Date(Number(m[1])), id: m[2] as string, edge: m[3] ?? '' };
}

/** `parameter-name=a,b`: variable names. */
export function parseNames(text: string | null): string[] | undefined {
  if (text === null) return undefined;
  const names = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0 || names.length > 100 || names.some((n) => n.length > 200)) {
    throw bad('parameter-name: 1 to 100 comma-separated names');
  }
  // Postgres text cannot hold NUL, and no variable name has control characters.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  if (names.some((n) => /[\u0000-\u001f\u007f]/.test(n))) {
    throw bad('parameter-name: names must not contain control characters');
  }
  return names;
}

/**
 * A feature's id: `<time ms>_<observation id>_<edge>`, the key of its row (time, id, edge), so that
 * reading one feature is one primary-key lookup in one partition; an aggregated dataset's interval
 * has no edge: `<time ms>_<32 hex>`.
 */
export const featureId = (timeMs: number, id: string, edge?: string) =>
  edge ? `${timeMs}_${id}_${edge}` : `${timeMs}_${id}`;
export function parseFeatureId(text: string): { time: Date; id: string; edge: string } {
  const m = /^(-?\d{1,16})_([0-9a-f]{64}|[0-9a-f]{32})(?:_([A-Za-z0-9_-]{1,64}))?$/.exec(text);
  if (!m || !inRange(Number(m[1]))) {
    throw bad('featureId: expected the "id" of a feature of the items (<time ms>_<hex>[_<edge>])');
  }
  return { time: new Date(Number(m[1])), id: m[2] as string, edge: m[3] ?? '' };
}

/** `f=`: one of the formats an operation offers; absent is the first. */
export function parseFormat<F extends string>(text: string | null, formats: readonly F[]): F {
  if (text === null) return formats[0] as F;
  const f = formats.find((x) => x === text.toLowerCase());
  if (!f) throw bad(`f: one of ${formats.join(', ')}`);
  return f;
}

/** A station's id as a path segment: what edges send as a station (1-200 characters, no controls). */
export function parseStationId(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  if (text.length === 0 || text.length > 200 || /[\u0000-\u001f\u007f]/.test(text)) {
    throw bad('locationId: a station id of 1-200 characters without control characters');
  }
  return text;
}
