import { createHash, timingSafeEqual } from 'node:crypto';

/** Who sent a request: a configured client, no credentials at all (401), or a token no client has (403). */
export type Caller = { client: string } | { missing: true } | { wrong: true };

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * The `http_intake.tokens` of the config: one secret token per client name. A request carries it as
 * `Authorization: Bearer <token>`, or as the password of HTTP Basic (for firmware that can only do
 * Basic, such as the Sensor.Community one; the user name is not checked). Tokens are compared as
 * SHA-256 digests with `timingSafeEqual`, against every client without stopping at a match, so the
 * answer's timing says nothing of a token's length, prefix or which client holds it.
 */
export class ClientTokens {
  private readonly clients: { name: string; digest: Buffer }[];

  constructor(tokens: Readonly<Record<string, string>>) {
    this.clients = Object.entries(tokens).map(([name, token]) => ({ name, digest: digest(token) }));
  }

  get names(): string[] {
    return this.clients.map((c) => c.name);
  }

  identify(authorization: string | undefined): Caller {
    const token = presented(authorization);
    if (token === undefined) return { missing: true };
    const given = digest(token);
    let found: string | undefined;
    for (const c of this.clients) {
      if (timingSafeEqual(c.digest, given) && found === undefined) found = c.name;
    }
    return found === undefined ? { wrong: true } : { client: found };
  }
}

function presented(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(authorization);
  // Tokens have at least 16 characters, so '' is no client's: a credential in another form is a 403.
  if (!m) return authorization.trim() === '' ? undefined : '';
  const [, scheme = '', value = ''] = m;
  switch (scheme.toLowerCase()) {
    case 'bearer':
      return value;
    case 'basic': {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      return colon === -1 ? decoded : decoded.slice(colon + 1);
    }
    default:
      // Another scheme: a credential that is no client's token (403, not 401).
      return '';
  }
}
