import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatIssTimestamp,
  issEpochMs,
  issTimestampToMs,
  msToIssTimestamp,
  parseIssTimestamp,
} from './iss-timestamp.js';

const ms = (iso: string) => Date.parse(iso);

describe('ISSLIVE TimeStamp', () => {
  it('counts hours from 00:00 UTC on 31 December of the previous year', () => {
    expect(issEpochMs(2026)).toBe(ms('2025-12-31T00:00:00.000Z'));
    expect(msToIssTimestamp(ms('2026-01-01T00:00:00.000Z'))).toBe(24);
    expect(issTimestampToMs(24, ms('2026-01-01T00:05:00Z'))).toBe(ms('2026-01-01T00:00:00.000Z'));
  });

  it('matches the GPS cross-check of tlcp.md §8.1 (2018-10-12T04:59:15Z)', () => {
    expect(issTimestampToMs(6844.9875, ms('2018-10-12T05:00:00Z'))).toBe(ms('2018-10-12T04:59:15.000Z'));
  });

  it('keeps millisecond precision', () => {
    const t = ms('2026-03-01T12:34:56.789Z');
    expect(parseIssTimestamp(formatIssTimestamp(t), t + 1500)).toBe(t);
  });

  it('puts a late-December TimeStamp in the old year when the clock is already in January', () => {
    // 2026 has 365 days: 31 Dec 23:59:24 is day 365, hour 23.99.
    const ts = 365 * 24 + 23.99;
    expect(issTimestampToMs(ts, ms('2027-01-01T00:00:30Z'))).toBe(ms('2026-12-31T23:59:24.000Z'));
  });

  it('puts an early-January TimeStamp in the new year when the clock still reads December', () => {
    expect(issTimestampToMs(24.01, ms('2026-12-31T23:59:50Z'))).toBe(ms('2027-01-01T00:00:36.000Z'));
  });

  it('handles the last hour of a leap year', () => {
    const ts = 366 * 24 + 23.5; // 2024-12-31T23:30Z
    expect(issTimestampToMs(ts, ms('2025-01-01T00:10:00Z'))).toBe(ms('2024-12-31T23:30:00.000Z'));
    expect(issTimestampToMs(ts, ms('2024-12-31T23:31:00Z'))).toBe(ms('2024-12-31T23:30:00.000Z'));
  });

  it('rejects what cannot be a TimeStamp', () => {
    const now = ms('2026-06-01T00:00:00Z');
    expect(issTimestampToMs(-1, now)).toBeUndefined();
    expect(issTimestampToMs(Number.NaN, now)).toBeUndefined();
    expect(issTimestampToMs(9000, now)).toBeUndefined();
    expect(parseIssTimestamp('', now)).toBeUndefined();
    expect(parseIssTimestamp(null, now)).toBeUndefined();
    expect(parseIssTimestamp('12h', now)).toBeUndefined();
  });

  it('round-trips any instant read within half a year of it, across year boundaries', () => {
    const lo = ms('2000-01-01T00:00:00Z');
    const hi = ms('2099-12-31T23:59:59Z');
    fc.assert(
      fc.property(
        fc.integer({ min: lo, max: hi }),
        fc.integer({ min: -170 * 24 * 3_600_000, max: 170 * 24 * 3_600_000 }),
        (t, skew) => parseIssTimestamp(formatIssTimestamp(t), t + skew) === t,
      ),
      { numRuns: 2000 },
    );
  });
});
