/**
 * Window arithmetic for datasets (pure). Windows are fixed-length, aligned to the Unix epoch in UTC
 * (a `P1D` window runs midnight to midnight UTC), and half-open: [start, end).
 */

// Durations are parsed as the protocol reads them (one reader for the collector and the edge).
export { parseDuration } from '@fieldbeam/protocol';

/** Start (ms) of the window of length `lengthMs` that contains `t` (ms). */
export function windowStartOf(t: number, lengthMs: number): number {
  return Math.floor(t / lengthMs) * lengthMs;
}

/**
 * Starts of the windows that overlap [from, to] (ms, inclusive), oldest first, at most `max`
 * (returns undefined beyond that, so a caller can look the windows up in the data instead).
 */
export function windowsOverlapping(
  from: number,
  to: number,
  lengthMs: number,
  max = 1000,
): number[] | undefined {
  if (to < from) return [];
  const first = windowStartOf(from, lengthMs);
  const last = windowStartOf(to, lengthMs);
  const count = (last - first) / lengthMs + 1;
  if (count > max) return undefined;
  const out: number[] = [];
  for (let s = first; s <= last; s += lengthMs) out.push(s);
  return out;
}

/** A window start as used in object keys and URLs: ISO-8601 UTC without milliseconds. */
export function windowKey(startMs: number): string {
  return new Date(startMs).toISOString().replace('.000Z', 'Z');
}

/** Parses a window given as in `windowKey` or any ISO-8601 UTC time; undefined when not a time. */
export function parseWindowKey(text: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?Z$/.test(text)) return undefined;
  const t = Date.parse(text);
  return Number.isFinite(t) ? t : undefined;
}

export interface WindowTiming {
  /** Window end (ms). */
  end: number;
  /** Wait after the window end before the final build (ms). */
  graceMs: number;
  /** Wait after the latest new data before building (ms). */
  debounceMs: number;
  /** Whether a window still open (before end + grace) gets provisional builds. */
  provisional: boolean;
  /** Longest wait after the window became dirty (ms); the debounce never pushes the build past it. */
  maxDelayMs?: number | undefined;
}

/**
 * When a window that just received data becomes due. Without provisional builds: once the window
 * is closed (end + grace) and quiet (last data + debounce). With them: once quiet; the builder
 * later schedules the final build at end + grace. `max_delay` caps the wait for quiet, counted from
 * `dirtySince` (the first data since the last build began): data arriving every second otherwise
 * moves the debounce on forever. The window store computes the same in SQL (`WindowStore.mark`).
 */
export function dueAt(lastDataAt: number, w: WindowTiming, dirtySince = lastDataAt): number {
  let quiet = lastDataAt + w.debounceMs;
  if (w.maxDelayMs !== undefined) quiet = Math.min(quiet, dirtySince + w.maxDelayMs);
  return w.provisional ? quiet : Math.max(quiet, w.end + w.graceMs);
}

/** Whether a build started at `at` is provisional (the window may still get on-time data). */
export function isProvisional(at: number, w: Pick<WindowTiming, 'end' | 'graceMs'>): boolean {
  return at < w.end + w.graceMs;
}
