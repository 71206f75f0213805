import type { IncomingMessage } from 'node:http';
import { isIP, isIPv6 } from 'node:net';
import { isLoopbackHost } from '../provision/reachability.js';

/**
 * The address a request is counted under for per-client bounds (live-update streams, login
 * failures), or undefined for this machine's own clients. It is the socket's peer, except behind a
 * reverse proxy on this machine (the peer is loopback): then the last `X-Forwarded-For` entry, the
 * one the proxy appended (nginx: `$proxy_add_x_forwarded_for`); entries before it are the client's
 * own words and never read. A loopback peer without that header is a client on this machine.
 */
export function clientAddress(req: IncomingMessage): string | undefined {
  const peer = req.socket.remoteAddress ?? '';
  if (!isLoopbackHost(peer)) return addressKey(peer);
  const forwarded = req.headers['x-forwarded-for'];
  const last = (Array.isArray(forwarded) ? forwarded.join(',') : (forwarded ?? '')).split(',').at(-1)?.trim();
  return last && isIP(last) !== 0 ? addressKey(last) : undefined;
}

/** IPv4 as it is (IPv4-mapped IPv6 unmapped); IPv6 by its /64, which one host usually holds whole. */
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
