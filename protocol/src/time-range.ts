/**
 * The span of observation times a receiver accepts, relative to its own clock. Every time a sensor
 * sends becomes a row in a monthly partition, so without a bound one message can make a partition
 * per month from 1970 to 9999.
 */
export interface AcceptedTimeRange {
  /** How far in the past a time may be, in ms. */
  maxAgeMs: number;
  /** How far in the future a time may be, in ms (clocks drift). */
  maxFutureMs: number;
}

const DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/**
 * Milliseconds in an ISO-8601 duration of fixed length: weeks, days, hours, minutes, seconds
 * (`PT1H`, `P1D`, `PT15M`, `PT30S`, `P1DT12H`). Years and months are refused: their length varies.
 */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text);
  if (!m || text === 'P' || text.endsWith('T')) {
    throw new Error(
      `"${text}" is not an ISO-8601 duration of weeks, days, hours, minutes, seconds (e.g. PT1H)`,
    );
  }
  const [, w, d, h, min, s] = m;
  const n = (v: string | undefined) => (v === undefined ? 0 : Number(v));
  return Math.round(((((n(w) * 7 + n(d)) * 24 + n(h)) * 60 + n(min)) * 60 + n(s)) * 1000);
}

/** True when `text` is a duration {@link parseDuration} accepts. */
export function isDuration(text: string): boolean {
  try {
    parseDuration(text);
    return true;
  } catch {
    return false;
  }
}

/** Why `timeMs` lies outside `range` around `nowMs`, or undefined when it lies inside. */
export function timeRangeProblem(
  timeMs: number,
  nowMs: number,
  range: AcceptedTimeRange,
): string | undefined {
  if (timeMs < nowMs - range.maxAgeMs) {
    return `time is ${describeSpan(nowMs - timeMs)} in the past, beyond the accepted ${describeSpan(range.maxAgeMs)}`;
  }
  if (timeMs > nowMs + range.maxFutureMs) {
    return `time is ${describeSpan(timeMs - nowMs)} in the future, beyond the accepted ${describeSpan(range.maxFutureMs)}`;
  }
  return undefined;
}

/** A span for a person: `12 d`, `3.5 h`, `40 min`, `12 s`. */
function describeSpan(ms: number): string {
  const round = (n: number) => String(Math.round(n * 10) / 10);
  if (ms >= 86_400_000) return `${round(ms / 86_400_000)} d`;
  if (ms >= 3_600_000) return `${round(ms / 3_600_000)} h`;
  if (ms >= 60_000) return `${round(ms / 60_000)} min`;
  return `${round(ms / 1000)} s`;
}
