import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toObservation } from '../readings.js';
import { packRow, RECEIVED_OUT, unpackRow } from './row-form.js';

const roundTrip = (text: string) => {
  const p = packRow(text);
  return unpackRow(p.obs, p.form);
};

describe('stored row form', () => {
  it('leaves out a receipt time equal to the time, and gives the text back exactly', () => {
    const text = JSON.stringify(
      toObservation(
        { source: 'mqtt', edge: 'gw', station: 'st', trace: '0af7651916cd43dd8448eb211c80319c' },
        { variable: 'air_temperature', value: 21.5, unit: 'K' },
        1_765_000_000_000,
      ),
    );
    const p = packRow(text);
    expect(p.form).toBe(RECEIVED_OUT);
    expect(p.obs).not.toContain('"received"');
    expect(text.length - p.obs.length).toBe(',"received":"2026-12-06T05:46:40.000Z"'.length);
    expect(unpackRow(p.obs, p.form)).toBe(text);
  });

  it('keeps whole a text whose receipt time differs, or that has none after its time', () => {
    const later = JSON.stringify(
      toObservation(
        { source: 'mqtt', edge: 'gw', station: 'st' },
        { variable: 'v', value: 1, unit: '1', timeMs: 1_765_000_000_000 },
        1_765_000_000_500,
      ),
    );
    for (const text of [
      later,
      '{"time":"1"}',
      '{"time":"1","received":"12"}',
      '{"time":"12","received":"1"}',
      '{"received":"1","time":"1"}',
      '{"time":"1","x":1,"received":"1"}',
    ]) {
      expect(packRow(text)).toEqual({ obs: text, form: null });
    }
  });

  it('does not take a "time" or "received" out of a string value', () => {
    const text = '{"station":"a\\",\\"time\\":\\"t\\",\\"received\\":\\"t\\"","time":"1","received":"2"}';
    expect(packRow(text)).toEqual({ obs: text, form: null });
    const escaped = '{"time":"a\\"b","received":"a\\"b"}';
    expect(roundTrip(escaped)).toBe(escaped);
  });

  it('gives back every text exactly (property)', () => {
    const str = fc.string({ unit: 'binary', maxLength: 12 });
    const time = fc.oneof(fc.constant('2026-12-06T05:45:14.901Z'), str);
    fc.assert(
      fc.property(
        str,
        time,
        time,
        fc.boolean(),
        fc.dictionary(str, str, { maxKeys: 3 }),
        (s, t, r, same, extra) => {
          const o = { station: s, time: t, received: same ? t : r };
          for (const text of [JSON.stringify({ ...o, ...extra }), JSON.stringify({ ...extra, ...o })]) {
            expect(roundTrip(text)).toBe(text);
          }
          if (same && !Object.hasOwn(extra, 'time') && !Object.hasOwn(extra, 'received'))
            expect(packRow(JSON.stringify({ ...o, ...extra })).form).toBe(RECEIVED_OUT);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
