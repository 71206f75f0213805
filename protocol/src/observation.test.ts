import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IsoTime, isIsoTime, textProblem } from './observation.js';

const roundTrips = (s: string) => {
  const ms = Date.parse(s);
  return !Number.isNaN(ms) && new Date(ms).toISOString() === s;
};
const digits = (n: number) => fc.integer({ min: 0, max: 10 ** n - 1 }).map((v) => String(v).padStart(n, '0'));

describe('isIsoTime', () => {
  it('is true exactly for strings that survive the round trip through Date', () => {
    const shaped = fc
      .tuple(digits(4), digits(2), digits(2), digits(2), digits(2), digits(2), digits(3))
      .map(([y, mo, d, h, mi, s, ms]) => `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`);
    const real = fc
      .integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 })
      .map((t) => new Date(t).toISOString());
    fc.assert(
      fc.property(fc.oneof(shaped, real), (s) => {
        expect(isIsoTime(s)).toBe(roundTrips(s));
      }),
      { numRuns: 20_000 },
    );
  });

  it('refuses impossible dates that have the right shape', () => {
    for (const s of [
      '2026-13-45T25:61:61.000Z',
      '2026-02-29T00:00:00.000Z',
      '2100-02-29T00:00:00.000Z',
      '2026-04-31T00:00:00.000Z',
      '2026-01-01T24:00:00.000Z',
      '2026-00-10T00:00:00.000Z',
    ]) {
      expect(isIsoTime(s), s).toBe(false);
      expect(IsoTime.safeParse(s).success, s).toBe(false);
    }
    expect(isIsoTime('2024-02-29T23:59:59.999Z')).toBe(true);
    expect(isIsoTime('2000-02-29T00:00:00.000Z')).toBe(true);
    expect(isIsoTime('2026-11-30T12:00:00Z')).toBe(false);
  });
});

describe('textProblem', () => {
  it('names NUL and lone surrogates, and passes everything else', () => {
    expect(textProblem('hot\u0000x')).toMatch(/NUL/);
    expect(textProblem('a\ud800')).toMatch(/surrogate/);
    expect(textProblem('\udc00a')).toMatch(/surrogate/);
    expect(textProblem('snow \ud83d\ude00 \t\n')).toBeUndefined();
    expect(textProblem('')).toBeUndefined();
  });
});
