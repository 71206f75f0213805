import { createHash, timingSafeEqual } from 'node:crypto';
import { topicMatches } from '../sources/mqtt-auth.js';

/** Who sent a request: a configured client, no credentials at all (401), or a token no client has (403). */
export type Caller = { client: string } | { missing: true } | { wrong: true };

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** A client's entry of `http_intake.tokens`: its token alone (every topic), or its token and topic filters. */
export type ClientTokenEntry = string | { readonly token: string; readonly topics: readonly string[] };

/**
 * The `http_intake.tokens` of the config: one secret token per client name, optionally limited to
 * MQTT topic filters (`allows`). A request carries it as
 * `Authorization: Bearer <token>`, or as the password of HTTP Basic (for firmware that can only do
 * Basic, such as the Sensor.Community one; the user name is not checked). Tokens are compared as
 * SHA-256 digests with `timingSafeEqual`, against every client without stopping at a match, so the
 * answer's timing says nothing of a token's length, prefix or which client holds it.
 */
export class ClientTokens {
  private readonly clients: { name: string; digest: Buffer }[];
  /** Topic filters of the clients limited to some; a client not here may post to any topic. */
  private readonly scopes = new Map<string, readonly string[]>();

  constructor(tokens: Readonly<Record<string, ClientTokenEntry>>) {
    this.clients = Object.entries(tokens).map(([name, entry]) => {
      if (typeof entry !== 'string') this.scopes.set(name, entry.topics);
      return { name, digest: digest(typeof entry === 'string' ? entry : entry.token) };
    });
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

  /**
   * Undefined when `client` may post to `topic` (a token without `topics` may post to any), else the
   * filters it is limited to, for the 403 to name. `orBelow`: the topic may still gain levels (a body
   * format adds them), so it fits when a filter matches it or some topic below it.
   */
  outsideScope(client: string, topic: string, orBelow = false): readonly string[] | undefined {
    const filters = this.scopes.get(client);
    const fits = orBelow ? matchesAtOrBelow : topicMatches;
    if (filters === undefined || filters.some((f) => fits(f, topic))) return undefined;
    return filters;
  }
}

/** Whether `filter` matches `topic` or some topic under it (`a/b` fits `a/b/+` and `a/#`). */
export function matchesAtOrBelow(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < t.length; i++) {
    if (f[i] === '#') return true;
    if (i >= f.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return true;
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
