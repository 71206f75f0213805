import { isIP } from 'node:net';

/**
 * Whether `host` (a URL's hostname, or a listen address) names this machine's loopback interface:
 * `localhost` (and `*.localhost`), 127.0.0.0/8, ::1 and IPv4-mapped 127.x. A Pi given such an
 * address talks to itself, not to the collector.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .replace(/^\[|\]$/g, '')
    .toLowerCase()
    .replace(/\.$/, '');
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    if (mapped) return (mapped[1] as string).startsWith('127.');
    return /^(0{0,4}:){2,7}0{0,3}1$/.test(h) || h === '::1';
  }
  return false;
}

/** How the collector's HTTP port must listen for Pis to download from it. */
export const COLLECTOR_LISTEN_HINT =
  'the collector must listen where the Pi reaches it: set FB_HTTP_HOST=0.0.0.0 (or its LAN address) in its settings and restart it';

/**
 * Warnings for `edge add --url`: addresses that work on this machine but not from a Pi. `httpHost`
 * is the collector's FB_HTTP_HOST as configured here.
 */
export function reachabilityWarnings(o: {
  url: string;
  nats: readonly string[];
  httpHost?: string;
}): string[] {
  const warnings: string[] = [];
  const hostOf = (u: string) => {
    try {
      return new URL(u).hostname;
    } catch {
      return undefined;
    }
  };
  const urlHost = hostOf(o.url);
  if (urlHost !== undefined && isLoopbackHost(urlHost))
    warnings.push(
      `--url ${o.url}: ${urlHost} is a loopback address, which a Pi cannot reach (it means the Pi itself); give the collector's LAN name or address`,
    );
  for (const n of o.nats) {
    const h = hostOf(n);
    if (h !== undefined && isLoopbackHost(h))
      warnings.push(
        `--nats ${n}: ${h} is a loopback address, which a Pi cannot reach; give the NATS server's LAN name or address`,
      );
  }
  if (o.httpHost !== undefined && isLoopbackHost(o.httpHost))
    warnings.push(
      `FB_HTTP_HOST is ${o.httpHost} (loopback only): a Pi cannot download the agent; ${COLLECTOR_LISTEN_HINT}`,
    );
  return warnings;
}
