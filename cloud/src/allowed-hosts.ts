import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { isLoopbackHost } from './provision/reachability.js';

/** The setting that names more Host names the collector's HTTP server answers to. */
export const ALLOWED_HOSTS_SETTING = 'FB_HTTP_ALLOWED_HOSTS';

/**
 * Name suffixes no one on the public internet can register or point at an address: a page on an
 * attacker's domain cannot rebind to them. `.local` is mDNS (RFC 6762), `.home.arpa` RFC 8375,
 * `.internal` ICANN's private-use name, `.localhost` RFC 6761; `.lan` and `.home` are what home and
 * site routers (OpenWrt, Fritz!Box, dnsmasq set-ups) name their hosts with, and are not delegated in
 * the root zone, so no public name ends in them either (the Pi guide's `collector.lan` works as is).
 */
const PRIVATE_SUFFIXES = ['.localhost', '.local', '.home.arpa', '.internal', '.lan', '.home'];

/** One entry of FB_HTTP_ALLOWED_HOSTS: `*`, a name, or `*.example.org` / `.example.org` for its subdomains. */
export const ALLOWED_HOST_ENTRY =
  /^(\*|(\*?\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)$/i;

/** The host name of a Host header (`name:port`, `[v6]:port`), lower case without a trailing dot. */
export function hostNameOf(header: string): string | undefined {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end === -1 || !/^(:\d*)?$/.test(h.slice(end + 1))) return undefined;
    return h.slice(1, end);
  }
  const m = /^([^:]*)(:\d*)?$/.exec(h);
  if (!m || m[1] === '') return undefined;
  return (m[1] as string).replace(/\.$/, '');
}

/**
 * Which Host headers the collector answers (DNS rebinding: a page on `evil.example` whose name the
 * attacker points at the collector's address afterwards is same-origin with it, and a browser on the
 * collector's network would read its API for that page; it sends `Host: evil.example`). Allowed by
 * default are the names such a page cannot have: IP literals (a page at `http://10.0.0.5/` is the
 * collector's own origin), `localhost`, single-label names and private-use suffixes (resolved only
 * inside the network), and this machine's host name. `setting` (FB_HTTP_ALLOWED_HOSTS, comma
 * separated) adds names, `*.domain` for subdomains; `*` allows every Host (behind a proxy that checks).
 */
export function hostAllowList(
  setting: string | undefined,
  ownNames: readonly string[] = [hostname()],
): (hostHeader: string | undefined) => boolean {
  const entries = (setting ?? '')
    .split(',')
    .map((e) => e.trim().toLowerCase().replace(/\.$/, ''))
    .filter(Boolean);
  if (entries.includes('*')) return () => true;
  const names = new Set([
    ...entries.filter((e) => !e.startsWith('*') && !e.startsWith('.')),
    ...ownNames.map((n) => n.toLowerCase()),
  ]);
  const suffixes = [
    ...PRIVATE_SUFFIXES,
    ...entries.filter((e) => e.startsWith('*.') || e.startsWith('.')).map((e) => e.replace(/^\*/, '')),
  ];
  return (header) => {
    // HTTP/1.0 without a Host: no browser sends that, so it is no rebinding.
    if (header === undefined) return true;
    const name = hostNameOf(header);
    if (name === undefined) return false;
    if (isIP(name) !== 0 || isLoopbackHost(name)) return true;
    if (!name.includes('.')) return true;
    return names.has(name) || suffixes.some((s) => name.endsWith(s));
  };
}

/** The answer's message for a Host not allowed, naming the setting that allows it. */
export function hostRefusal(header: string | undefined): string {
  const shown = JSON.stringify((header ?? '').slice(0, 200));
  return (
    `Host ${shown} is not a name this collector answers to (a guard against DNS rebinding); ` +
    `if it is this collector's name, add it to ${ALLOWED_HOSTS_SETTING} (comma-separated, *.domain for subdomains, * for any)`
  );
}
