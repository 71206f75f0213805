import { describe, expect, it } from 'vitest';
import {
  encodeCursor,
  parseBbox,
  parseCursor,
  parseDatetime,
  parseLimit,
  parsePoint,
  parseWithinKm,
} from './query-params.js';

describe('OGC API query parameters', () => {
  it('bbox', () => {
    expect(parseBbox('1,2,3,4')).toEqual([1, 2, 3, 4]);
    expect(parseBbox(null)).toBeUndefined();
    for (const b of ['1,2,3', '3,2,1,4', 'a,b,c,d', '0,0,200,1']) expect(() => parseBbox(b)).toThrow(/bbox/);
  });
  it('datetime instants and intervals', () => {
    expect(parseDatetime('2026-11-30T12:00:00Z')).toEqual({
      from: new Date('2026-11-30T12:00:00Z'),
      to: new Date('2026-11-30T12:00:00Z'),
    });
    expect(parseDatetime('2026-11-30T12:00:00Z/..')).toEqual({ from: new Date('2026-11-30T12:00:00Z') });
    expect(parseDatetime('../2026-11-30')).toEqual({ to: new Date('2026-11-30T00:00:00Z') });
    for (const d of ['yesterday', '2026-11-30T13:00:00Z/2026-11-30T12:00:00Z', 'a/b/c']) {
      expect(() => parseDatetime(d)).toThrow(/datetime/);
    }
  });
  it('limit, point, within, cursor', () => {
    expect(parseLimit(null, 50)).toBe(50);
    expect(parseLimit('10', 50)).toBe(10);
    expect(() => parseLimit('51', 50)).toThrow(/at most 50/);
    expect(() => parseLimit('0', 50)).toThrow();
    expect(parsePoint('POINT(7.5 46.25)')).toEqual({ lon: 7.5, lat: 46.25 });
    expect(() => parsePoint('POINT(7.5)')).toThrow(/coords/);
    expect(parseWithinKm('500', 'm', 1)).toBe(0.5);
    expect(() => parseWithinKm('5', 'furlong', 1)).toThrow(/within-units/);
    const id = 'a'.repeat(64);
    expect(parseCursor(encodeCursor(123, id))).toEqual({ time: new Date(123), id });
    expect(() => parseCursor('garbage')).toThrow(/cursor/);
  });
});
