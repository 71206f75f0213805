import { describe, expect, it } from 'vitest';
import { isLoopbackHost, reachabilityWarnings } from './reachability.js';

describe('isLoopbackHost', () => {
  it.each([
    'localhost',
    'LOCALHOST',
    'localhost.',
    'pi.localhost',
    '127.0.0.1',
    '127.255.0.9',
    '::1',
    '[::1]',
    '0:0:0:0:0:0:0:1',
    '::ffff:127.0.0.1',
  ])('%s is loopback', (h) => expect(isLoopbackHost(h)).toBe(true));

  it.each([
    'collector.lan',
    '192.168.1.10',
    '10.0.0.1',
    '0.0.0.0',
    '::',
    'fe80::1',
    '128.0.0.1',
    'localhost.example.org',
  ])('%s is not', (h) => expect(isLoopbackHost(h)).toBe(false));
});

describe('reachabilityWarnings', () => {
  it('names each address a Pi cannot reach', () => {
    const w = reachabilityWarnings({
      url: 'http://127.0.0.1:8080',
      nats: ['nats://collector.lan:4222', 'nats://[::1]:4222'],
      httpHost: 'localhost',
    });
    expect(w).toHaveLength(3);
    expect(w[0]).toMatch(/^--url http:\/\/127\.0\.0\.1:8080: 127\.0\.0\.1 is a loopback address/);
    expect(w[1]).toMatch(/^--nats nats:\/\/\[::1\]:4222/);
    expect(w[2]).toMatch(/^FB_HTTP_HOST is localhost .*FB_HTTP_HOST=0\.0\.0\.0/);
  });

  it('is quiet for LAN addresses and a collector on all interfaces', () => {
    expect(
      reachabilityWarnings({
        url: 'https://collector.lan',
        nats: ['tls://collector.lan:4222'],
        httpHost: '0.0.0.0',
      }),
    ).toEqual([]);
  });
});
