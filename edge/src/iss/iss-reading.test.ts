import { observationId } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { toObservation } from '../readings.js';
import { hasSignal, toIssReading } from './iss-reading.js';
import { formatIssTimestamp } from './iss-timestamp.js';
import type { IssFieldValues } from './isslive-schema.js';

const now = Date.parse('2026-03-01T12:00:05.000Z');
const at = Date.parse('2026-03-01T12:00:00.125Z');

const fields = (over: Partial<IssFieldValues>): IssFieldValues => ({
  TimeStamp: formatIssTimestamp(at),
  Value: '742.997924804688',
  'Status.Class': '24',
  'Status.Indicator': '',
  'Status.Color': 'Green',
  CalibratedData: '',
  ...over,
});

describe('ISSLIVE update to reading', () => {
  it('reads a numeric Value at the TimeStamp instant, status as quality', () => {
    expect(toIssReading('USLAB000058', fields({}), { unit: 'mmHg', nowMs: now })).toEqual({
      variable: 'iss:USLAB000058',
      value: 742.997924804688,
      unit: 'mmHg',
      timeMs: at,
      quality: ['status_class:24', 'status_color:Green'],
    });
  });

  it('keeps a non-numeric Value as text', () => {
    const r = toIssReading('X', fields({ Value: 'Data|with,meta%chars' }), { unit: '1', nowMs: now });
    expect(r?.value).toBeNull();
    expect(r?.text).toBe('Data|with,meta%chars');
    expect(toIssReading('X', fields({ Value: 'NaN' }), { unit: '1', nowMs: now })?.text).toBe('NaN');
    expect(toIssReading('X', fields({ Value: '1.2e+09' }), { unit: '1', nowMs: now })?.value).toBe(1.2e9);
    expect(toIssReading('X', fields({ Value: '-.5' }), { unit: '1', nowMs: now })?.value).toBe(-0.5);
  });

  it('yields nothing for a null or empty Value', () => {
    expect(toIssReading('X', fields({ Value: null }), { unit: '1', nowMs: now })).toBeUndefined();
    expect(toIssReading('X', fields({ Value: ' ' }), { unit: '1', nowMs: now })).toBeUndefined();
  });

  it('falls back to receipt time only when TimeStamp is unusable', () => {
    const r = toIssReading('X', fields({ TimeStamp: null }), { unit: '1', nowMs: now });
    expect(r?.timeMs).toBeUndefined();
    const obs = r && toObservation({ source: 'isslive', edge: 'e1', station: 'ISS' }, r, now);
    expect(obs?.quality).toContain('edge_time');
  });

  it('gives the same id to the same update received at another time', () => {
    const origin = { source: 'isslive', edge: 'e1', station: 'ISS' };
    const a = toIssReading('USLAB000058', fields({}), { unit: 'mmHg', nowMs: now });
    const b = toIssReading('USLAB000058', fields({ 'Status.Color': 'Red' }), {
      unit: 'mmHg',
      nowMs: now + 60_000,
    });
    if (!a || !b) throw new Error('expected readings');
    const oa = toObservation(origin, a, now);
    const ob = toObservation(origin, b, now + 60_000);
    expect(oa.id).toBe(ob.id);
    expect(oa.id).toBe(
      observationId({
        source: 'isslive',
        station: 'ISS',
        variable: 'iss:USLAB000058',
        time: '2026-03-01T12:00:00.125Z',
        value: 742.997924804688,
      }),
    );
  });

  it('knows signal from the clock status class', () => {
    expect(hasSignal(fields({}))).toBe(true);
    expect(hasSignal(fields({ 'Status.Class': '9' }))).toBe(false);
    expect(hasSignal(fields({ 'Status.Class': null }))).toBe(false);
  });
});
