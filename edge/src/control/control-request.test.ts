import { ControlErrorStatus, controlLimits } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { ControlRefusal, parseControlRequest } from './control-request.js';

const enc = (s: string) => new TextEncoder().encode(s);
function refusal(fn: () => unknown): ControlRefusal {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ControlRefusal);
    return err as ControlRefusal;
  }
  throw new Error('not refused');
}

describe('parseControlRequest', () => {
  it('takes an empty body as no options, and a valid one with its id', () => {
    expect(parseControlRequest('status', new Uint8Array())).toEqual({});
    expect(parseControlRequest('rejects', enc('{"id":"r1","limit":5}'))).toEqual({ id: 'r1', limit: 5 });
  });

  it('refuses a body over the limit before decoding it (413)', () => {
    const big = new Uint8Array(controlLimits.maxRequestBytes + 1).fill(0x7b);
    const r = refusal(() => parseControlRequest('ping', big));
    expect(r.status).toBe(ControlErrorStatus.TOO_LARGE);
    expect(r.message).toContain(String(controlLimits.maxRequestBytes));
  });

  it('refuses what is not JSON, not UTF-8 or not the op request (400), keeping a readable id', () => {
    expect(refusal(() => parseControlRequest('ping', enc('{nope'))).status).toBe(
      ControlErrorStatus.BAD_REQUEST,
    );
    expect(refusal(() => parseControlRequest('ping', new Uint8Array([0xff, 0xfe]))).message).toMatch(
      /not JSON/,
    );
    const unknownField = refusal(() => parseControlRequest('ping', enc('{"id":"x","verbose":true}')));
    expect(unknownField).toMatchObject({ status: ControlErrorStatus.BAD_REQUEST, id: 'x' });
    expect(unknownField.message).toMatch(/not a ping request/);
    const badLimit = refusal(() =>
      parseControlRequest('rejects', enc(`{"limit":${controlLimits.maxRejects + 1}}`)),
    );
    expect(badLimit.message).toMatch(/limit/);
    expect(refusal(() => parseControlRequest('status', enc('[1,2]'))).status).toBe(400);
    expect(refusal(() => parseControlRequest('status', enc('null'))).status).toBe(400);
  });
});
