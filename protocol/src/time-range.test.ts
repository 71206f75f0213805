import { describe, expect, it } from 'vitest';
import { isDuration, parseDuration, timeRangeProblem } from './time-range.js';

const H = 3_600_000;

describe('parseDuration', () => {
  it('reads fixed-length ISO-8601 durations', () => {
    expect(parseDuration('PT10M')).toBe(600_000);
    expect(parseDuration('P7D')).toBe(168 * H);
    expect(parseDuration('P1W')).toBe(168 * H);
    expect(parseDuration('P1DT12H')).toBe(36 * H);
    expect(parseDuration('PT0.5S')).toBe(500);
  });

  it('refuses what has no fixed length or no form', () => {
    for (const bad of ['P1M', 'P1Y', 'P', 'PT', '7d', '', 'P-1D']) {
      expect(isDuration(bad), bad).toBe(false);
      expect(() => parseDuration(bad)).toThrow(/ISO-8601 duration/);
    }
  });
});

describe('timeRangeProblem', () => {
  const now = Date.parse('2026-12-01T00:00:00.000Z');
  const range = { maxAgeMs: 7 * 24 * H, maxFutureMs: 600_000 };

  it('accepts times inside the range, edges included', () => {
    expect(timeRangeProblem(now, now, range)).toBeUndefined();
    expect(timeRangeProblem(now - range.maxAgeMs, now, range)).toBeUndefined();
    expect(timeRangeProblem(now + range.maxFutureMs, now, range)).toBeUndefined();
  });

  it('says how far outside a time is', () => {
    expect(timeRangeProblem(now - 10 * 24 * H, now, range)).toBe(
      'time is 10 d in the past, beyond the accepted 7 d',
    );
    expect(timeRangeProblem(now + 2 * H, now, range)).toBe(
      'time is 2 h in the future, beyond the accepted 10 min',
    );
  });
});
