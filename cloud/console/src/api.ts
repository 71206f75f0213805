/**
 * The console's only data source: JSON under /console/api/ (shapes in cloud/src/console/console-api.ts,
 * imported as types only so no schema code reaches the browser).
 */
import type { ApiError } from '../../src/console/console-api.ts';

export const apiBase = '/console/api/';

/** An answer other than 2xx: the collector's message, its validation reasons and the status. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reasons: string[] = [],
  ) {
    super(message);
  }
}

async function failure(res: Response): Promise<ApiFailure> {
  let body: Partial<ApiError> = {};
  try {
    body = (await res.json()) as Partial<ApiError>;
  } catch {
    // Not JSON (a proxy's page): the status line says enough.
  }
  const message = typeof body.error === 'string' ? body.error : `${res.status} ${res.statusText}`;
  return new ApiFailure(res.status, message, Array.isArray(body.reasons) ? body.reasons : []);
}

async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path.startsWith('/') ? path : apiBase + path, init);
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export const getJson = <T>(path: string): Promise<T> => send<T>('GET', path);
export const postJson = <T>(path: string, body: unknown): Promise<T> => send<T>('POST', path, body);
export const deleteJson = <T>(path: string): Promise<T> => send<T>('DELETE', path);

/** A path segment or query value as the collector expects it (ids and topics may hold any character). */
export const enc = encodeURIComponent;

/**
 * A link from an answer, kept only when it is http(s) (relative ones resolve to this origin): data
 * never becomes a `javascript:` or other scheme's link, whatever the answer holds.
 */
export function safeHref(url: string | null | undefined, base = globalThis.location?.href): string | null {
  if (!url) return null;
  try {
    const u = new URL(url, base);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch {
    return null;
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
