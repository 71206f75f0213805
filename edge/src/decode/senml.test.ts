import { describe, expect, it } from 'vitest';
import { decodeCbor } from './cbor.js';
import { senmlDecoder } from './senml.js';
import type { DecodeOutcome } from './types.js';

const RECEIVED = Date.parse('2026-01-01T00:00:00Z');
const decode = (payload: string | Uint8Array): DecodeOutcome =>
  senmlDecoder()({
    topic: 'senml/dev',
    payload: typeof payload === 'string' ? new TextEncoder().encode(payload) : payload,
    captures: {},
    receivedMs: RECEIVED,
  });
const readings = (o: DecodeOutcome) => (o.kind === 'readings' ? o.readings : []);

describe('senml resolution (RFC 8428 §4.5)', () => {
  it('concatenates bn and n into the sensor, and picks the variable from the unit', () => {
    expect(
      readings(
        decode('[{"bn":"urn:dev:ow:1:","n":"voltage","u":"V","v":120.1},{"n":"rh","u":"%RH","v":40}]'),
      ),
    ).toEqual([
      { variable: 'senml:voltage', value: 120.1, unit: 'V', sensor: 'urn:dev:ow:1:voltage' },
      { variable: 'relative_humidity', value: 40, unit: '%', sensor: 'urn:dev:ow:1:rh' },
    ]);
  });

  it('resolves the same series however the name is split between bn and n', () => {
    const a = readings(decode('[{"n":"urn:dev:ow:1","u":"Cel","t":1.276020076e+09,"v":23.5}]'));
    const b = readings(decode('[{"bn":"urn:dev:ow:1","u":"Cel","t":1.276020076e+09,"v":23.5}]'));
    expect(a).toEqual(b);
    expect(a).toEqual([
      {
        variable: 'senml:temperature',
        value: 23.5,
        unit: 'degC',
        sensor: 'urn:dev:ow:1',
        timeMs: 1276020076000,
      },
    ]);
  });

  it('applies bu only to records without their own u, and bt + t for times', () => {
    const o = decode(
      '[{"bn":"d:","bt":1.276020076001e+09,"bu":"A","n":"voltage","u":"V","v":120.1},{"n":"current","t":-5,"v":1.2}]',
    );
    expect(readings(o)).toEqual([
      { variable: 'senml:voltage', value: 120.1, unit: 'V', sensor: 'd:voltage', timeMs: 1276020076001 },
      { variable: 'senml:current', value: 1.2, unit: 'A', sensor: 'd:current', timeMs: 1276020071001 },
    ]);
  });

  it('takes times below 2^28 as relative to receipt (flagged), and 0 as "now" left to the caller', () => {
    const o = decode(
      '[{"n":"a","u":"W","v":1,"t":-5},{"n":"a","u":"W","v":2},{"n":"a","u":"W","v":3,"t":0.1}]',
    );
    expect(readings(o).map((r) => [r.timeMs, r.quality])).toEqual([
      [RECEIVED - 5000, ['edge_time']],
      [undefined, undefined],
      [RECEIVED + 100, ['edge_time']],
    ]);
  });

  it('adds bv and bs, reads sums, and keeps vs/vb/vd as text', () => {
    const o = decode(
      '[{"bn":"m/","bv":0.1,"bs":100,"n":"x","v":0.2,"s":5},{"n":"label","vs":"Machine Room"},{"n":"open","vb":false},{"n":"raw","vd":"aGkgCg"}]',
    );
    expect(readings(o).map((r) => [r.variable, r.value ?? r.text, r.sensor])).toEqual([
      ['senml:value', 0.3, 'm/x'],
      ['senml:value_sum', 105, 'm/x'],
      ['senml:text', 'Machine Room', 'm/label'],
      ['senml:boolean', 'false', 'm/open'],
      ['senml:data', 'aGkgCg', 'm/raw'],
    ]);
  });

  it('maps lat/lon to CF and keeps series with one name apart by unit', () => {
    const o = decode(
      '[{"bn":"dev","bu":"%RH","v":20},{"u":"lon","v":24.30621},{"u":"lat","v":60.07965},{"u":"%EL","v":98}]',
    );
    expect(readings(o).map((r) => [r.variable, r.unit])).toEqual([
      ['relative_humidity', '%'],
      ['longitude', 'degrees_east'],
      ['latitude', 'degrees_north'],
      ['senml:battery_level', '%'],
    ]);
  });

  it('reads the pre-RFC draft {"e":[...]} with top-level bases', () => {
    const o = decode(
      '{"e":[{"n":"voltage","u":"V","v":120.1},{"n":"current","t":-3,"v":0.14e1}],"bn":"urn:dev:mac:1/","bt":1276020076,"ver":1,"bu":"A"}',
    );
    expect(readings(o)).toEqual([
      {
        variable: 'senml:voltage',
        value: 120.1,
        unit: 'V',
        sensor: 'urn:dev:mac:1/voltage',
        timeMs: 1276020076000,
      },
      {
        variable: 'senml:current',
        value: 1.4,
        unit: 'A',
        sensor: 'urn:dev:mac:1/current',
        timeMs: 1276020073000,
      },
    ]);
  });

  it('skips nameless records and null values, rejects bad types and unknown must-understand fields', () => {
    expect(decode('[{"v":1},{"n":"a","v":null}]')).toMatchObject({
      readings: [],
      skipped: [{ field: '[0]' }, { field: 'a' }],
    });
    expect(decode('[{"n":"a","v":"1"}]')).toEqual({
      kind: 'rejected',
      reason: 'record 0: field "v" must be a number, got "1"',
    });
    expect(decode('[{"n":"a","v":1,"x_":2}]')).toEqual({
      kind: 'rejected',
      reason: 'record 0: must-understand field "x_" is not supported',
    });
    expect(decode('{"n":"a"}').kind).toBe('rejected');
    expect(decode('').kind).toBe('rejected');
  });
});

describe('senml CBOR', () => {
  const ex3 =
    '87a721781b75726e3a6465763a6f773a3130653230373361303130383030363a22fb41d303a15b00106223614120050067766f6c7461676501615602fb405e066666666666a3006763757272656e74062402fb3ff3333333333333a3006763757272656e74062302fb3ff4cccccccccccda3006763757272656e74062202fb3ff6666666666666a3006763757272656e74062102f93e00a3006763757272656e74062002fb3ff999999999999aa3006763757272656e74060002fb3ffb333333333333';

  it('decodes the RFC example pack, half floats included, to the same readings as its JSON form', () => {
    const o = decode(Uint8Array.from(Buffer.from(ex3, 'hex')));
    expect(readings(o).map((r) => [r.sensor, r.value, r.unit, r.timeMs])).toEqual([
      ['urn:dev:ow:10e2073a0108006:voltage', 120.1, 'V', 1276020076001],
      ['urn:dev:ow:10e2073a0108006:current', 1.2, 'A', 1276020071001],
      ['urn:dev:ow:10e2073a0108006:current', 1.3, 'A', 1276020072001],
      ['urn:dev:ow:10e2073a0108006:current', 1.4, 'A', 1276020073001],
      ['urn:dev:ow:10e2073a0108006:current', 1.5, 'A', 1276020074001],
      ['urn:dev:ow:10e2073a0108006:current', 1.6, 'A', 1276020075001],
      ['urn:dev:ow:10e2073a0108006:current', 1.7, 'A', 1276020076001],
    ]);
  });

  it('rejects truncated CBOR with a reason', () => {
    expect(decode(Uint8Array.from(Buffer.from(ex3.slice(0, 60), 'hex')))).toMatchObject({
      kind: 'rejected',
      reason: expect.stringContaining('CBOR: truncated'),
    });
  });

  it('reads float32 as the shortest decimal, byte strings, and simple values', () => {
    expect(decodeCbor(Uint8Array.from([0xfa, 0x3f, 0x99, 0x99, 0x9a]))).toEqual({ ok: true, value: 1.2 });
    expect(decodeCbor(Uint8Array.from([0x83, 0xf4, 0xf5, 0xf6]))).toEqual({
      ok: true,
      value: [false, true, null],
    });
    expect(decodeCbor(Uint8Array.from([0x42, 0x01, 0x02]))).toEqual({
      ok: true,
      value: Uint8Array.from([1, 2]),
    });
    expect(decodeCbor(Uint8Array.from([0x38, 0x63]))).toEqual({ ok: true, value: -100 });
    expect(decodeCbor(Uint8Array.from([0x9f, 0xff])).ok).toBe(false); // indefinite length: not supported
    expect(decodeCbor(Uint8Array.from([0x01, 0x02]))).toEqual({
      ok: false,
      reason: 'CBOR: 1 bytes after the first item',
    });
  });

  it('maps byte-string vd to base64url text', () => {
    const pack = Uint8Array.from([0x81, 0xa2, 0x00, 0x61, 0x78, 0x08, 0x43, 0x68, 0x69, 0x0a]); // [{0:"x", 8:h'68690a'}]
    expect(readings(decode(pack))).toEqual([
      { variable: 'senml:data', value: null, text: 'aGkK', unit: '', sensor: 'x' },
    ]);
  });
});
