import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deliveryHash } from './mqtt-delivery.js';

describe('deliveryHash', () => {
  // The hashes are kept in the buffer file: a re-delivery after an upgrade is recognised only if the
  // digest of the same message stays the same bytes.
  it('is the first 16 bytes of SHA-256 over topic, a zero byte and payload', () => {
    for (const [topic, payload] of [
      ['bench/st/env', Buffer.from('{"seq":1}')],
      ['stations/Zürich/☃', Buffer.from([0, 255, 128, 10])],
      ['', Buffer.alloc(0)],
      // Larger than the reused input space, then a short one after a long one: nothing left over.
      ['big/☃', Buffer.alloc(20_000, 7)],
      ['a/b', Buffer.alloc(16_000, 9)],
      ['a/b', Buffer.from('x')],
    ] as const) {
      const expected = createHash('sha256')
        .update(Buffer.from(topic))
        .update(Buffer.from([0]))
        .update(payload)
        .digest()
        .subarray(0, 16);
      expect(deliveryHash(topic, payload)).toEqual(expected);
    }
  });
});
