import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeUpdate,
  encodeFieldValue,
  encodeUpdate,
  type FieldValue,
  parseHttpBody,
  parseParams,
  parseWsRequest,
  percentDecode,
  tlcpLine,
  updateLine,
} from './tlcp-encoding.js';

describe('TLCP field values', () => {
  it('encodes null, empty and the reserved characters', () => {
    expect(encodeFieldValue(null)).toBe('#');
    expect(encodeFieldValue('')).toBe('$');
    expect(encodeFieldValue('Data|with,meta%chars')).toBe('Data%7Cwith,meta%25chars');
    expect(encodeFieldValue('a\r\nb')).toBe('a%0D%0Ab');
    expect(encodeFieldValue('#1')).toBe('%231');
    expect(encodeFieldValue('$x')).toBe('%24x');
    expect(encodeFieldValue('^2')).toBe('%5E2');
    expect(encodeFieldValue('a#$^')).toBe('a#$^');
    expect(encodeFieldValue('7845.34077500')).toBe('7845.34077500');
  });

  it('decodes escapes byte-wise as UTF-8 and keeps a plus sign', () => {
    expect(percentDecode('%C2%B0C+1')).toBe('°C+1');
    expect(() => percentDecode('50%')).toThrow(/percent escape/);
  });
});

describe('TLCP U field lists', () => {
  it('sends every field on a first update', () => {
    expect(encodeUpdate(undefined, ['7845.3', '-99.9', '24', '', 'Green', null])).toBe(
      '7845.3|-99.9|24|$|Green|#',
    );
  });

  it('matches the verified transcript deltas (tlcp.md §4)', () => {
    const snap = ['7845.34077500', '-99.9990', '24', '', 'Green', 'x'];
    expect(encodeUpdate(snap, ['7845.34090861', '-97.9178', '24', '', 'Green', 'x'])).toBe(
      '7845.34090861|-97.9178|^4',
    );
    expect(encodeUpdate(snap, ['7845.34313139', '23.1510', '24', null, 'Green', 'x'])).toBe(
      '7845.34313139|23.1510||#|^2',
    );
  });

  it('decodes what it encodes, whatever the values (round trip)', () => {
    const value: fc.Arbitrary<FieldValue> = fc.oneof(
      fc.constant(null),
      fc.constant(''),
      fc.constantFrom('#', '$', '^', '^3', '|', '%', '%25', '\r\n', ',', '24', 'Green'),
      fc.string({ unit: 'grapheme' }),
      fc.string(),
    );
    const history = fc
      .integer({ min: 1, max: 8 })
      .chain((n) =>
        fc.array(fc.array(value, { minLength: n, maxLength: n }), { minLength: 1, maxLength: 6 }),
      );
    fc.assert(
      fc.property(history, (updates) => {
        let sent: FieldValue[] | undefined;
        let seen: FieldValue[] | undefined;
        for (const next of updates) {
          const encoded = encodeUpdate(sent, next);
          expect(encoded).not.toMatch(/[\r\n]/);
          seen = decodeUpdate(seen, encoded, next.length);
          expect(seen).toEqual(next);
          sent = next;
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses a skip marker on a first update and diff formats', () => {
    expect(() => decodeUpdate(undefined, '^2', 2)).toThrow(/first update/);
    expect(() => decodeUpdate(['a'], '^Pxyz', 1)).toThrow(/unsupported/);
    expect(() => decodeUpdate(['a', 'b'], 'x', 2)).toThrow(/expected 2 fields/);
  });
});

describe('TLCP lines and requests', () => {
  it('builds notification lines, encoding string arguments only', () => {
    expect(tlcpLine('PROBE')).toBe('PROBE');
    expect(tlcpLine('CONOK', 'S1a2T1', 50000, 5000, '*')).toBe('CONOK,S1a2T1,50000,5000,*');
    expect(tlcpLine('CONERR', 20, 'Session not found')).toBe('CONERR,20,Session%20not%20found');
    expect(tlcpLine('SUBOK', 1, 3, 6)).toBe('SUBOK,1,3,6');
    expect(updateLine(1, 2, 'a|^5')).toBe('U,1,2,a|^5');
  });

  it('parses a batched control frame as the client sends it', () => {
    const frame =
      'control\r\nLS_reqId=1&LS_op=add&LS_subId=1&LS_mode=MERGE&LS_group=TIME_000001%20USLAB000032' +
      '&LS_schema=TimeStamp%20Value&LS_snapshot=true&LS_ack=false\r\nLS_reqId=2&LS_op=delete&LS_subId=1\r\n';
    const req = parseWsRequest(frame);
    expect(req.name).toBe('control');
    expect(req.params).toHaveLength(2);
    expect(req.params[0]?.get('LS_group')).toBe('TIME_000001 USLAB000032');
    expect(req.params[1]?.get('LS_op')).toBe('delete');
    expect(parseWsRequest('wsok')).toEqual({ name: 'wsok', params: [] });
  });

  it('parses HTTP bodies and keeps plus signs', () => {
    const [p] = parseHttpBody('LS_polling=true&LS_user=a+b%2Bc&flag\r\n');
    expect(p?.get('LS_polling')).toBe('true');
    expect(p?.get('LS_user')).toBe('a+b+c');
    expect(p?.get('flag')).toBe('');
    expect(parseParams('')).toEqual(new Map());
  });
});
