import { describe, expect, it } from 'vitest';
import { age, bytes, dash, num, rate, since, time } from './format.ts';

describe('console figures', () => {
  it('shows unknown figures as a dash, never as 0 or NaN', () => {
    for (const f of [num, rate, age, bytes]) {
      expect(f(null)).toBe(dash);
      expect(f(undefined)).toBe(dash);
      expect(f(Number.NaN)).toBe(dash);
    }
    expect(time(null)).toBe(dash);
  });
  it('writes numbers without locale grouping, as the API has them', () => {
    expect(num(1234567)).toBe('1234567');
    expect(num(2.345, 2)).toBe('2.35');
    expect(rate(12.34)).toBe('12.3');
    expect(rate(1234.5)).toBe('1235');
  });
  it('writes ages in the largest units that fit', () => {
    expect(age(0)).toBe('0 s');
    expect(age(59.6)).toBe('1 min 0 s');
    expect(age(185)).toBe('3 min 5 s');
    expect(age(7800)).toBe('2 h 10 min');
    expect(age(4 * 86400 + 3 * 3600)).toBe('4 d 3 h');
    expect(age(-5)).toBe('0 s');
  });
  it('writes sizes in binary units', () => {
    expect(bytes(512)).toBe('512 B');
    expect(bytes(8600)).toBe('8.4 KiB');
    expect(bytes(3 * 2 ** 30)).toBe('3.0 GiB');
  });
  it('writes times in UTC to the second, and keeps text that is not a time as it is', () => {
    expect(time('2026-12-05T23:44:19.116Z')).toBe('2026-12-05 23:44:19Z');
    expect(time('2026-12-06T01:44:19+02:00')).toBe('2026-12-05 23:44:19Z');
    expect(time('not a time')).toBe('not a time');
    expect(since('2026-12-05T23:44:19Z', Date.parse('2026-12-05T23:45:19Z'))).toBe(60);
  });
});
