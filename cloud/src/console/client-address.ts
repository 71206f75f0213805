import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';

/**
 * The address a request is counted under for per-client bounds (live-update streams, login
 * failures): its IPv4 address, or the /64 of an IPv6 one, since a single IPv6 host usually holds a
 * whole /64 and could otherwise take a fresh address per request. The socket's peer is used, not
 * X-Forwarded-For, which any client can write.
 */
export function clientAddress(req: IncomingMessage): string {
  return addressKey(req.socket.remoteAddress ?? '');
}

export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
