/**
 * ISSLIVE `TimeStamp` arithmetic (tlcp.md §8.1).
 *
 * A TimeStamp is a decimal number of hours since 00:00 UTC on 31 December of the previous year,
 * so 1 January 00:00 UTC is `24`. The year itself is not carried, which makes the conversion
 * ambiguous around new year: a TimeStamp of 8783.9 received at 00:00:30 on 1 January belongs to the
 * year that just ended, and 24.01 received while the local clock still reads 31 December belongs to
 * the year that is starting. We resolve it by taking the year that puts the instant closest to the
 * receiver's clock.
 */

const HOUR_MS = 3_600_000;

/** Longest year (366 days) plus the leading day of the epoch: no valid TimeStamp is above this. */
const MAX_HOURS = 367 * 24;

/** 00:00 UTC on 31 December of `year - 1`: the instant TimeStamp 0 stands for in `year`. */
export function issEpochMs(year: number): number {
  return Date.UTC(year, 0, 1) - 24 * HOUR_MS;
}

/**
 * Converts a TimeStamp (hours) to epoch milliseconds, rounded to the millisecond, choosing the year
 * (the clock's year, the one before or the one after) that lands closest to `nowMs`.
 * Returns `undefined` for values no ISSLIVE TimeStamp can take (negative, beyond a year, not finite).
 */
export function issTimestampToMs(hours: number, nowMs: number): number | undefined {
  if (!Number.isFinite(hours) || hours < 0 || hours > MAX_HOURS) return undefined;
  const year = new Date(nowMs).getUTCFullYear();
  let best: number | undefined;
  for (const candidate of [year - 1, year, year + 1]) {
    const ms = Math.round(issEpochMs(candidate) + hours * HOUR_MS);
    if (best === undefined || Math.abs(ms - nowMs) < Math.abs(best - nowMs)) best = ms;
  }
  return best;
}

const DECIMAL = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

/** {@link issTimestampToMs} for the field as it arrives (a decimal string, or null when absent). */
export function parseIssTimestamp(text: string | null | undefined, nowMs: number): number | undefined {
  if (text == null || !DECIMAL.test(text)) return undefined;
  return issTimestampToMs(Number(text), nowMs);
}

/** The TimeStamp (hours) for an instant, in the instant's own UTC year. */
export function msToIssTimestamp(ms: number): number {
  const year = new Date(ms).getUTCFullYear();
  return (ms - issEpochMs(year)) / HOUR_MS;
}

/**
 * The TimeStamp as the replay server writes it. Nine decimals of an hour are 3.6 µs, so every
 * millisecond instant survives the round trip through {@link parseIssTimestamp} exactly.
 */
export function formatIssTimestamp(ms: number): string {
  return msToIssTimestamp(ms).toFixed(9);
}
