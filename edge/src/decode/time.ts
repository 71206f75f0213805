/**
 * Timestamps as firmware sends them, turned into epoch ms UTC.
 *
 * Policy for a wall-clock time without a UTC offset (Tasmota's default `Time`, its legacy dotted
 * form): with a configured IANA `timeZone` it is converted exactly. Without one the decoder does NOT
 * guess: the reading gets no sensor time (the caller stamps receipt time and flags `edge_time`) plus
 * `time_offset_unknown`. A guess (UTC, or the gateway's zone) would be silently wrong by hours and
 * file readings into the wrong dataset windows; receipt time is at most a telemetry period late and
 * says so. Times before 2001 are a device clock that never synced (`clock_unsynced`), same treatment.
 */

export type ParsedTime =
  | { kind: 'utc'; ms: number }
  /** A wall-clock time with no offset, as if it were UTC (`Date.UTC` of the fields). */
  | { kind: 'local'; wallMs: number }
  | { kind: 'none' }
  | { kind: 'invalid'; reason: string };

/** What a decoder attaches to a reading: a sensor time, or none plus the flags saying why. */
export interface ResolvedTime {
  timeMs?: number;
  quality: string[];
}

/** Before this (2001-01-01) a device clock is taken as never synced. */
const EARLIEST_PLAUSIBLE_MS = 978_307_200_000;

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;
const DOTTED = /^(\d{4})\.(\d{2})\.(\d{2})[T ](\d{2}):(\d{2}):(\d{2})$/;

/**
 * Epoch seconds, ms, µs or ns told apart by magnitude: seconds until the year 5138, ms from 1973,
 * µs and ns beyond. Every device clock in the corpus falls cleanly into one band.
 */
export function epochToMs(n: number): number | undefined {
  if (!Number.isFinite(n) || n <= 0) return undefined;
  if (n < 1e11) return Math.round(n * 1000);
  if (n < 1e14) return Math.round(n);
  if (n < 1e17) return Math.round(n / 1e3);
  if (n < 1e20) return Math.round(n / 1e6);
  return undefined;
}

function wallClock(fields: (string | undefined)[]): number | undefined {
  const [y, mo, d, h = '0', mi = '0', s = '0', frac = ''] = fields;
  const ms = Number(`${frac}000`.slice(0, 3));
  const t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  const back = new Date(t);
  // Date.UTC rolls 2024-02-31 over to March and month 13 into the next year; a real clock never
  // sends those, so they are invalid.
  if (
    Number.isNaN(t) ||
    back.getUTCMonth() !== Number(mo) - 1 ||
    back.getUTCDate() !== Number(d) ||
    back.getUTCHours() !== Number(h)
  )
    return undefined;
  if (Number(mi) > 59 || Number(s) > 60) return undefined;
  return t;
}

function offsetMs(offset: string): number | undefined {
  if (offset === 'Z' || offset === 'z') return 0;
  const m = /^([+-])(\d{2}):?(\d{2})?$/.exec(offset);
  if (!m) return undefined;
  const h = Number(m[2]);
  const min = Number(m[3] ?? '0');
  if (h > 18 || min > 59) return undefined;
  return (m[1] === '-' ? -1 : 1) * (h * 60 + min) * 60_000;
}

/** Parses one timestamp value: epoch number or numeric string, ISO 8601 with or without offset, dotted. */
export function parseTime(raw: unknown): ParsedTime {
  if (raw === null || raw === undefined || raw === '') return { kind: 'none' };
  if (typeof raw === 'number' || (typeof raw === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(raw))) {
    const ms = epochToMs(Number(raw));
    return ms === undefined ? { kind: 'invalid', reason: `epoch ${raw} is not a time` } : { kind: 'utc', ms };
  }
  if (typeof raw !== 'string') return { kind: 'invalid', reason: `expected a time, got ${typeof raw}` };
  const text = raw.trim();
  const iso = ISO.exec(text);
  if (iso) {
    const wall = wallClock(iso.slice(1, 8));
    if (wall === undefined) return { kind: 'invalid', reason: `"${text.slice(0, 40)}" is not a valid date` };
    const tz = iso[8];
    if (tz === undefined) return { kind: 'local', wallMs: wall };
    const off = offsetMs(tz);
    return off === undefined
      ? { kind: 'invalid', reason: `bad UTC offset "${tz}"` }
      : { kind: 'utc', ms: wall - off };
  }
  const dotted = DOTTED.exec(text);
  if (dotted) {
    const wall = wallClock(dotted.slice(1, 7));
    return wall === undefined
      ? { kind: 'invalid', reason: `"${text}" is not a valid date` }
      : { kind: 'local', wallMs: wall };
  }
  return { kind: 'invalid', reason: `unrecognised time "${text.slice(0, 40)}"` };
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export { isTimeZone } from '@fieldbeam/protocol';

/** The zone's offset from UTC at instant `utcMs`, in ms. */
function zoneOffsetMs(utcMs: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(utcMs))) parts[p.type] = Number(p.value);
  const wall = Date.UTC(
    parts.year ?? 1970,
    (parts.month ?? 1) - 1,
    parts.day ?? 1,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  );
  return wall - (utcMs - (((utcMs % 1000) + 1000) % 1000));
}

/**
 * A wall-clock time in `timeZone` as epoch ms UTC. The zone's offsets a day before and after are
 * the only candidates (no zone changes twice within a day); a wall time that occurs twice (autumn
 * DST) resolves to its first occurrence, one skipped in spring moves forward by the gap.
 */
export function wallToUtc(wallMs: number, timeZone: string): number {
  const before = zoneOffsetMs(wallMs - 86_400_000, timeZone);
  const after = zoneOffsetMs(wallMs + 86_400_000, timeZone);
  const valid = [wallMs - before, wallMs - after].filter((t) => zoneOffsetMs(t, timeZone) === wallMs - t);
  return valid.length > 0 ? Math.min(...valid) : wallMs - before;
}

/** Applies the time policy above to a parsed time. */
export function resolveTime(parsed: ParsedTime, opts: { timeZone?: string } = {}): ResolvedTime {
  let ms: number;
  switch (parsed.kind) {
    case 'none':
      return { quality: [] };
    case 'invalid':
      return { quality: ['time_invalid'] };
    case 'utc':
      ms = parsed.ms;
      break;
    case 'local':
      // An unsynced clock counts up from 1970 whatever its zone.
      if (parsed.wallMs < EARLIEST_PLAUSIBLE_MS) return { quality: ['clock_unsynced'] };
      if (opts.timeZone === undefined) return { quality: ['time_offset_unknown'] };
      ms = wallToUtc(parsed.wallMs, opts.timeZone);
      break;
  }
  if (ms < EARLIEST_PLAUSIBLE_MS) return { quality: ['clock_unsynced'] };
  return { timeMs: ms, quality: [] };
}

/** `parseTime` then `resolveTime`. */
export function readTime(raw: unknown, opts: { timeZone?: string } = {}): ResolvedTime {
  return resolveTime(parseTime(raw), opts);
}
