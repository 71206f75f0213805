import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { addressKey, clientAddress } from './client-address.js';

const req = (peer: string, forwarded?: string) =>
  ({
    socket: { remoteAddress: peer },
    headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded },
  }) as unknown as IncomingMessage;

describe('addressKey', () => {
  it('keeps IPv4 addresses, unmaps IPv4-mapped IPv6, and counts IPv6 by its /64', () => {
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
  });

  it("takes a remote peer as it is, and behind a local proxy the address it appended, never the client's own claim", () => {
    expect(clientAddress(req('192.0.2.7', '198.51.100.1'))).toBe('192.0.2.7');
    expect(clientAddress(req('127.0.0.1', '203.0.113.66, 198.51.100.1'))).toBe('198.51.100.1');
    expect(clientAddress(req('::1', '2001:db8:1:2::5'))).toBe('2001:db8:1:2::/64');
    expect(clientAddress(req('127.0.0.1'))).toBeUndefined();
    expect(clientAddress(req('127.0.0.1', 'not-an-address'))).toBeUndefined();
  });
});
