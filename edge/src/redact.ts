/**
 * Secrets kept out of logs and printed output. One place decides what counts as a secret: values of
 * secret keys (`pass`, `nkey_seed`, ...), the password in a URL's user info (`mqtt://u:p@host`) and
 * secret-looking query parameters (`?token=`). Everything else is shown as it is.
 */

export const REDACTED = '(redacted)';

/** Keys whose values are secrets, wherever they stand (config and log fields alike). */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'pass',
  'password',
  'nkey_seed',
  'nkeySeed',
  'token',
  'secret',
  /** `http_intake.tokens`: every value under it, whatever the client's name. */
  'tokens',
]);

/**
 * `scheme://user:password@`: the password runs to the last `@` before a space or a comma (servers
 * are listed comma-separated), so one holding an unescaped `@` or `/` is still covered whole; at
 * worst a host after it is hidden too.
 */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s/?#@,:]*):[^\s,]*@/gi;
const SECRET_QUERY = /([?&][^=&#\s]*(?:pass|token|secret|key|auth)[^=&#\s]*=)[^&#\s]*/gi;

/** The text with every URL password and secret query parameter in it replaced by `(redacted)`. */
export function redactUrl(text: string): string {
  if (!text.includes('://')) return text;
  return text.replace(URL_PASSWORD, `$1:${REDACTED}@`).replace(SECRET_QUERY, `$1${REDACTED}`);
}

/** A copy of `value` safe to print: secret keys' values and URL passwords redacted, at any depth. */
export function redactSecrets<T>(value: T): T {
  return walk(value, undefined) as T;
}

function walk(value: unknown, key: string | undefined): unknown {
  if (typeof value === 'string')
    return key !== undefined && SECRET_KEYS.has(key) ? REDACTED : redactUrl(value);
  if (Array.isArray(value)) return value.map((v) => walk(v, key));
  if (value === null || typeof value !== 'object') return value;
  // Everything under a secret key is secret (a map of client -> token).
  const secret = key !== undefined && SECRET_KEYS.has(key);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, secret ? key : k)]));
}

/** Log fields that carry URLs: their passwords are redacted wherever a log call forgets to. */
const URL_KEYS = ['url', 'servers', 'server_url', 'serverUrl'];

/**
 * pino's `redact` option for every logger of the agent: secret keys and URL fields at the top of a
 * log line's object and one level down (`{ config: { pass } }`). A second line of defence: code logs
 * URLs through `redactUrl` already.
 */
export const logRedaction = {
  paths: [...SECRET_KEYS, ...URL_KEYS].flatMap((k) => [k, `*.${k}`]),
  censor: (value: unknown, path: string[]): unknown =>
    SECRET_KEYS.has(path[path.length - 1] ?? '') ? REDACTED : redactSecrets(value),
};
