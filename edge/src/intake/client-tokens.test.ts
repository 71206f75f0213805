import { describe, expect, it } from 'vitest';
import { ClientTokens, matchesAtOrBelow } from './client-tokens.js';

const tokens = new ClientTokens({ script: 'token-of-the-script-0001', ttn: 'token-of-the-ttn-hook-02' });
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('ClientTokens', () => {
  it('names the client whose bearer token or Basic password is presented', () => {
    expect(tokens.identify('Bearer token-of-the-script-0001')).toEqual({ client: 'script' });
    expect(tokens.identify('bearer token-of-the-ttn-hook-02')).toEqual({ client: 'ttn' });
    expect(tokens.identify(basic('airrohr', 'token-of-the-ttn-hook-02'))).toEqual({ client: 'ttn' });
  });

  it('tells a missing credential (401) from a wrong one (403)', () => {
    expect(tokens.identify(undefined)).toEqual({ missing: true });
    expect(tokens.identify('   ')).toEqual({ missing: true });
    for (const wrong of [
      'Bearer token-of-the-script-000',
      'Bearer token-of-the-script-00011',
      'Bearer ',
      'Token token-of-the-script-0001',
      basic('script', 'nope'),
      'token-of-the-script-0001 extra words',
      'token-of-the-script-0001',
    ])
      expect(tokens.identify(wrong)).toEqual({ wrong: true });
  });

  it('limits a client given topic filters to them, and lets a plain token post anywhere', () => {
    const scoped = new ClientTokens({
      any: 'token-of-the-any-client-1',
      barn: { token: 'token-of-the-barn-client', topics: ['sensors/barn/#', 'sc/+/esp-1'] },
    });
    expect(scoped.identify('Bearer token-of-the-barn-client')).toEqual({ client: 'barn' });
    expect(scoped.outsideScope('any', 'sensors/house/temperature')).toBeUndefined();
    expect(scoped.outsideScope('barn', 'sensors/barn/temperature')).toBeUndefined();
    expect(scoped.outsideScope('barn', 'sensors/house/temperature')).toEqual([
      'sensors/barn/#',
      'sc/+/esp-1',
    ]);
    // A body format may add levels: `sc/x` can still become `sc/x/esp-1`, `sensors/house` cannot fit.
    expect(scoped.outsideScope('barn', 'sc/x', true)).toBeUndefined();
    expect(scoped.outsideScope('barn', 'sc/x')).toBeDefined();
    expect(scoped.outsideScope('barn', 'sensors/house', true)).toBeDefined();
  });

  it('matches a filter at or below a topic', () => {
    expect(matchesAtOrBelow('a/#', 'a')).toBe(true);
    expect(matchesAtOrBelow('a/+/c', 'a/b')).toBe(true);
    expect(matchesAtOrBelow('a/+/c', 'a/b/c')).toBe(true);
    expect(matchesAtOrBelow('a/+/c', 'a/b/d')).toBe(false);
    expect(matchesAtOrBelow('a/b', 'a/b/c')).toBe(false);
    expect(matchesAtOrBelow('x/#', 'a')).toBe(false);
  });
});
