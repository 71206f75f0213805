/**
 * Lets a warning through at most once per `everyMs` for each key, and says how many were held back
 * since the last one. What outside input can cause at any rate (rejects, refused connections) is
 * counted in a metric every time; its log line must not grow with the rate of an attack.
 */
export interface LogThrottle {
  /** `undefined`: hold this one back. Otherwise log it, with `suppressed` held back since the last. */
  pass(key: string): { suppressed: number } | undefined;
}

export function createLogThrottle(everyMs: number, now: () => number = Date.now): LogThrottle {
  // Keys come from a fixed set (reasons, kinds), so the map stays small.
  const last = new Map<string, { at: number; suppressed: number }>();
  return {
    pass(key) {
      const t = now();
      const seen = last.get(key);
      if (seen && t - seen.at < everyMs) {
        seen.suppressed++;
        return undefined;
      }
      last.set(key, { at: t, suppressed: 0 });
      return { suppressed: seen?.suppressed ?? 0 };
    },
  };
}
