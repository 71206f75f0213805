import { describe, expect, it } from 'vitest';
import {
  encodeCursor,
  featureId,
  parseBbox,
  parseCursor,
  parseDatetime,
  parseFeatureId,
  parseFormat,
  parseLimit,
  parseNames,
  parsePoint,
  parseStationId,
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
    expect(parseLimit(null, 50)).toEqual({ limit: 50 });
    expect(parseLimit('10', 50)).toEqual({ limit: 10 });
    // Above the maximum: reduced to it, and the answer can say from what.
    expect(parseLimit('51', 50)).toEqual({ limit: 50, reducedFrom: 51 });
    expect(parseLimit('999999999999999', 50)).toEqual({ limit: 50, reducedFrom: 999999999999999 });
    for (const l of ['0', '-1', '1e3', '0x10', ' 5', '', '1.5', '9999999999999999']) {
      expect(() => parseLimit(l, 50)).toThrow(/limit/);
    }
    expect(parsePoint('POINT(7.5 46.25)')).toEqual({ lon: 7.5, lat: 46.25 });
    expect(() => parsePoint('POINT(7.5)')).toThrow(/coords/);
    expect(parseWithinKm('500', 'm', 1)).toBe(0.5);
    expect(() => parseWithinKm('5', 'furlong', 1)).toThrow(/within-units/);
    const id = 'a'.repeat(64);
    expect(parseCursor(encodeCursor(123, id, 'gw-1'))).toEqual({ time: new Date(123), id, edge: 'gw-1' });
    const interval = 'd'.repeat(32);
    expect(parseCursor(encodeCursor(456, interval, ''))).toEqual({
      time: new Date(456),
      id: interval,
      edge: '',
    });
    // A cursor from before the edge was part of it starts at the first edge of its (time, id).
    expect(parseCursor(Buffer.from(`123_${id}`).toString('base64url'))).toEqual({
      time: new Date(123),
      id,
      edge: '',
    });
    expect(() => parseCursor('garbage')).toThrow(/cursor/);
  });

  it('refuses a cursor whose time Postgres cannot hold', () => {
    const id = 'a'.repeat(64);
    for (const ms of ['99999999999999999999', '8640000000000000', '-62167219200001', '253402300800000']) {
      const cursor = Buffer.from(`${ms}_${id}`).toString('base64url');
      expect(() => parseCursor(cursor)).toThrow(/cursor/);
    }
    expect(parseCursor(encodeCursor(253402300799999, id, 'gw-1'))?.time.toISOString()).toBe(
      '9999-12-31T23:59:59.999Z',
    );
  });
  it('looks within-units up by name only, never on the prototype', () => {
    for (const units of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      expect(() => parseWithinKm('1', units, 1)).toThrow(/within-units: one of km, m, mi/);
    }
    expect(parseWithinKm('2', 'MI', 1)).toBeCloseTo(3.218688);
    expect(() => parseWithinKm('', 'km', 1)).toThrow(/within/);
  });
  it('refuses dates that do not exist instead of rolling them over', () => {
    for (const d of [
      '2026-02-30',
      '2026-02-29T00:00:00Z',
      '2026-13-01',
      '2026-01-01T24:00:00Z',
      '2026-01-01T00:00:00+24:00',
    ]) {
      expect(() => parseDatetime(d)).toThrow(/datetime/);
    }
    expect(parseDatetime('2028-02-29')).toEqual({
      from: new Date('2028-02-29T00:00:00Z'),
      to: new Date('2028-02-29T00:00:00Z'),
    });
    expect(() => parseDatetime('0000-01-01T00:00:00+01:00')).toThrow(/0000-9999/);
  });
  it('refuses parameter names Postgres cannot take', () => {
    expect(parseNames('a, b')).toEqual(['a', 'b']);
    expect(() => parseNames('a\u0000b')).toThrow(/control characters/);
    expect(() => parseNames('a\u001bb')).toThrow(/control characters/);
  });
  it('refuses an empty bbox part rather than reading it as 0', () => {
    expect(() => parseBbox('1,,3,4')).toThrow(/bbox/);
  });
  it('feature ids, formats, station ids', () => {
    const id = 'b'.repeat(64);
    expect(parseFeatureId(featureId(1764928800123, id, 'gw-1'))).toEqual({
      time: new Date(1764928800123),
      id,
      edge: 'gw-1',
    });
    // An aggregated dataset's interval: 32 hex, no edge.
    expect(parseFeatureId(featureId(60_000, 'c'.repeat(32)))).toEqual({
      time: new Date(60_000),
      id: 'c'.repeat(32),
      edge: '',
    });
    for (const f of [
      '',
      'x',
      `1_${id}_`,
      `1_${'c'.repeat(40)}`,
      `1_${'g'.repeat(64)}_e`,
      `99999999999999999_${id}_e`,
    ]) {
      expect(() => parseFeatureId(f)).toThrow(/featureId/);
    }
    expect(parseFormat(null, ['json', 'csv'])).toBe('json');
    expect(parseFormat('CSV', ['json', 'csv'])).toBe('csv');
    expect(() => parseFormat('xml', ['json', 'csv'])).toThrow(/f: one of json, csv/);
    expect(() => parseFormat('constructor', ['json', 'csv'])).toThrow(/f:/);
    expect(parseStationId('st-1')).toBe('st-1');
    for (const s of ['', 'a\u0000b', 'x'.repeat(201)]) expect(() => parseStationId(s)).toThrow(/locationId/);
  });
});
