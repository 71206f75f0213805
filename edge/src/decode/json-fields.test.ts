import { describe, expect, it } from 'vitest';
import { jsonFieldsDecoder } from './json-fields.js';
import { leaves, resolvePath } from './json-path.js';
import { numberDecoder } from './number.js';

const input = (payload: string, topic = 'site/x') => ({
  topic,
  payload: new TextEncoder().encode(payload),
  captures: {},
  receivedMs: 0,
});

describe('resolvePath', () => {
  const doc = {
    SDS0X1: { 'PM2.5': 2.1, PM10: 4.7 },
    'a.b': { c: 1 },
    a: { b: { c: 2 } },
    'switch:0': { aenergy: { by_minute: [198.4, 0] } },
  };

  it('finds keys that contain dots by matching the keys the object has', () => {
    expect(resolvePath(doc, 'SDS0X1.PM2.5')).toEqual({ found: true, value: 2.1 });
    // A plain key is only ever itself, and only the object's own.
    expect(resolvePath(doc, 'SDS0X1')).toEqual({ found: true, value: doc.SDS0X1 });
    expect(resolvePath(doc, 'constructor')).toEqual({ found: false });
    expect(resolvePath({ n: null }, 'n')).toEqual({ found: true, value: null });
    expect(resolvePath(doc, 'SDS0X1.PM10')).toEqual({ found: true, value: 4.7 });
  });

  it('prefers the longest existing key, and falls back to a shorter one', () => {
    expect(resolvePath(doc, 'a.b.c')).toEqual({ found: true, value: 1 });
    expect(resolvePath({ 'a.b': {}, a: { b: { c: 2 } } }, 'a.b.c')).toEqual({ found: true, value: 2 });
  });

  it('indexes arrays with [n] or a plain segment', () => {
    expect(resolvePath(doc, 'switch:0.aenergy.by_minute[0]')).toEqual({ found: true, value: 198.4 });
    expect(resolvePath(doc, 'switch:0.aenergy.by_minute.1')).toEqual({ found: true, value: 0 });
    expect(resolvePath(doc, 'switch:0.aenergy.by_minute[2]')).toEqual({ found: false });
  });

  it('reports a missing path', () => {
    expect(resolvePath(doc, 'SDS0X1.PM1')).toEqual({ found: false });
    expect(resolvePath(42, 'x')).toEqual({ found: false });
  });

  it('lists leaves with their paths', () => {
    expect([...leaves({ a: { b: 1 }, c: [2, null] }, 5)]).toEqual([
      ['a.b', 1],
      ['c[0]', 2],
      ['c[1]', null],
    ]);
  });
});

describe('jsonFieldsDecoder', () => {
  it('keeps the flat-map behaviour', () => {
    const decode = jsonFieldsDecoder({
      fields: { temperature: { variable: 'air_temperature', unit: 'degC' } },
    });
    expect(decode(input('{"temperature": 21.5, "other": 1}'))).toEqual({
      kind: 'readings',
      readings: [{ variable: 'air_temperature', value: 21.5, unit: 'degC' }],
      skipped: [],
    });
  });

  it('reads dotted paths, converts units, and takes the time from a path', () => {
    const decode = jsonFieldsDecoder({
      fields: {
        'SDS0X1.PM2.5': {
          variable: 'mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air',
          unit: 'µg/m³',
        },
        'BME280.Temperature': { variable: 'air_temperature', unit: 'degF' },
      },
      time: 'Time',
    });
    const out = decode(
      input('{"Time":"2021-06-27T15:03:44+02:00","SDS0X1":{"PM2.5":2.1},"BME280":{"Temperature":78.8}}'),
    );
    expect(out).toEqual({
      kind: 'readings',
      readings: [
        {
          variable: 'mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air',
          value: 2.1,
          unit: 'ug m-3',
          timeMs: Date.parse('2021-06-27T13:03:44Z'),
        },
        { variable: 'air_temperature', value: 26, unit: 'degC', timeMs: Date.parse('2021-06-27T13:03:44Z') },
      ],
      skipped: [],
    });
  });

  it('skips no-reading markers and rejects a non-number with the field name', () => {
    const decode = jsonFieldsDecoder({
      fields: { t: { variable: 'v', unit: 'degC' }, h: { variable: 'h', unit: '%' } },
    });
    expect(decode(input('{"t": null, "h": "nan"}'))).toMatchObject({
      kind: 'readings',
      readings: [],
      skipped: [{ field: 't' }, { field: 'h' }],
    });
    expect(decode(input('{"t": "warm"}'))).toMatchObject({
      kind: 'rejected',
      reason: expect.stringContaining('"t"'),
    });
    expect(decode(input('[1]'))).toEqual({ kind: 'rejected', reason: 'expected a JSON object' });
    expect(decode(input('{'))).toMatchObject({
      kind: 'rejected',
      reason: expect.stringContaining('not JSON'),
    });
  });

  it('without a field map, takes every numeric leaf with its unit unknown', () => {
    const out = jsonFieldsDecoder()(input('{"a": 1, "b": {"c": 2.5, "d": "x"}, "e": null}'));
    expect(out).toEqual({
      kind: 'readings',
      readings: [
        { variable: 'json:a', value: 1, unit: '', quality: ['unit_unknown'] },
        { variable: 'json:b.c', value: 2.5, unit: '', quality: ['unit_unknown'] },
      ],
      skipped: [{ field: 'e', reason: 'no reading: null' }],
    });
  });
});

describe('numberDecoder', () => {
  it('reads one number in its configured unit, converted', () => {
    expect(numberDecoder({ variable: 'air_pressure', unit: 'Pa' })(input('101325'))).toEqual({
      kind: 'readings',
      readings: [{ variable: 'air_pressure', value: 1013.25, unit: 'hPa' }],
      skipped: [],
    });
  });

  it('names the variable after the last topic level when not configured', () => {
    expect(numberDecoder()(input('21.5', 'kitchen/temperature'))).toEqual({
      kind: 'readings',
      readings: [{ variable: 'mqtt:temperature', value: 21.5, unit: '', quality: ['unit_unknown'] }],
      skipped: [],
    });
  });

  it.each(['nan', 'None', 'unknown', '', '-', 'unavailable'])('skips %j, never stores 0', (marker) => {
    expect(numberDecoder({ variable: 'v', unit: 'degC' })(input(marker))).toEqual({
      kind: 'readings',
      readings: [],
      skipped: [{ field: '(payload)', reason: `no reading: ${JSON.stringify(marker)}` }],
    });
  });

  it('rejects text and invalid UTF-8', () => {
    expect(numberDecoder({ variable: 'v', unit: '' })(input('idle')).kind).toBe('rejected');
    // Longer than any number's spelling: refused before it is decoded, with its size.
    expect(numberDecoder({ variable: 'v', unit: '' })(input(`21.5${' '.repeat(61)}`))).toEqual({
      kind: 'rejected',
      reason: 'a plain number payload is at most 64 bytes; got 65',
    });
    expect(numberDecoder({ variable: 'v', unit: '' })(input(`21.5${' '.repeat(60)}`)).kind).not.toBe(
      'rejected',
    );
    expect(
      numberDecoder({ variable: 'v', unit: '' })({ ...input(''), payload: Uint8Array.of(0xb0) }),
    ).toEqual({
      kind: 'rejected',
      reason: 'payload is not valid UTF-8 text',
    });
    // The text decoder is shared by all messages: one that failed leaves nothing behind for the next.
    const decode = jsonFieldsDecoder({ fields: { t: { variable: 'v', unit: '' } } });
    expect(decode({ ...input(''), payload: Uint8Array.of(0x7b, 0xe2, 0x82) }).kind).toBe('rejected');
    expect(decode(input('{"t":1.5}'))).toMatchObject({ kind: 'readings', readings: [{ value: 1.5 }] });
  });
});
