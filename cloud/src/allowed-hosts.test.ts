import { describe, expect, it } from 'vitest';
import { hostAllowList, hostNameOf, hostRefusal } from './allowed-hosts.js';

describe('Host allow-list', () => {
  const allowed = hostAllowList(undefined, ['collector-7']);

  it('answers names a page on another domain cannot have: IP literals, loopback, single-label, private-use, own name', () => {
    for (const h of [
      '127.0.0.1:8080',
      '10.1.2.3',
      '[::1]:8080',
      '[fe80::1]',
      'localhost:8080',
      'console.localhost',
      'collector',
      'COLLECTOR-7:8080',
      'pi.local',
      'pi.home.arpa',
      'collector.lan',
      'fritz.home',
      'collector.internal',
      undefined,
    ])
      expect(allowed(h), String(h)).toBe(true);
  });

  it('refuses public names (those an attacker can rebind) and malformed Hosts', () => {
    for (const h of [
      'evil.example:8080',
      'evil.example.',
      'collector.example.net',
      'evil.lan.example',
      'localhost.evil.example',
      '',
      ':80',
      '[::1',
    ])
      expect(allowed(h), h).toBe(false);
  });

  it('adds the names of FB_HTTP_ALLOWED_HOSTS, *.domain for subdomains, and * allows any', () => {
    const listed = hostAllowList(' collector.example.org, *.site.example ', []);
    expect(listed('collector.example.org:443')).toBe(true);
    expect(listed('collector.site.example')).toBe(true);
    expect(listed('other.example.org')).toBe(false);
    expect(hostAllowList('*', [])('evil.example')).toBe(true);
  });

  it('reads host names out of Host headers, and names the setting when refusing', () => {
    expect(hostNameOf('Example.ORG.:8080')).toBe('example.org');
    expect(hostNameOf('[2001:db8::1]:80')).toBe('2001:db8::1');
    expect(hostNameOf('a:b:c')).toBeUndefined();
    expect(hostRefusal('evil.example')).toContain('FB_HTTP_ALLOWED_HOSTS');
  });
});
