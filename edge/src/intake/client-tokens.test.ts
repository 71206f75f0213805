import { describe, expect, it } from 'vitest';
import { ClientTokens } from './client-tokens.js';

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
});
