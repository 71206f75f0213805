import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from '../http-api.js';
import { hasBody, isJsonType } from './request-body.js';

/** The session cookie's name. `__Host-` would need Secure, which a plain-HTTP LAN collector cannot set. */
export const SESSION_COOKIE = 'fb_console';

const digest = (s: string) => createHash('sha256').update(s).digest();

export interface SessionLimits {
  ttlMs: number;
  /** Sessions kept at once; a login beyond ends the oldest (memory stays bounded whatever logs in). */
  maxSessions: number;
}

/**
 * The console's logins: random session ids in memory, each expiring, at most `maxSessions`. A
 * collector restart logs everyone out, which is the safe side.
 */
export class ConsoleSessions {
  private readonly sessions = new Map<string, number>();
  private readonly expected: Buffer | undefined;

  constructor(
    adminToken: string | undefined,
    readonly limits: SessionLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.expected = adminToken === undefined ? undefined : digest(adminToken);
  }

  /** FB_ADMIN_TOKEN is set: logins (and so writes) exist. */
  get writable(): boolean {
    return this.expected !== undefined;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** A new session for the right token (compared as digests in constant time), else undefined. */
  login(token: string): { id: string; expiresAt: number } | undefined {
    if (!this.expected || !timingSafeEqual(digest(token), this.expected)) return undefined;
    this.sweep();
    while (this.sessions.size >= this.limits.maxSessions) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const expiresAt = this.now() + this.limits.ttlMs;
    this.sessions.set(id, expiresAt);
    return { id, expiresAt };
  }

  logout(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  /** When the session ends, or undefined for no (or an expired) session. */
  valid(id: string | undefined): number | undefined {
    if (!id) return undefined;
    const until = this.sessions.get(id);
    if (until === undefined) return undefined;
    if (until <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return until;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, until] of this.sessions) if (until <= now) this.sessions.delete(id);
  }
}

/** The session id the request's cookie carries, if any. */
export function sessionOf(req: IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === SESSION_COOKIE) return rest.join('=') || undefined;
  }
  return undefined;
}

/**
 * The session cookie. Behind a TLS proxy that says so (`X-Forwarded-Proto: https`) it is also
 * `Secure`; trusting that header can only restrict where the browser sends the cookie.
 */
export function setSessionCookie(req: IncomingMessage, res: ServerResponse, id: string, ttlMs: number): void {
  const secure = req.headers['x-forwarded-proto'] === 'https' ? '; Secure' : '';
  res.setHeader(
    'set-cookie',
    `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(ttlMs / 1000)}${secure}`,
  );
}

export function clearSessionCookie(res: ServerResponse): void {
  res.setHeader('set-cookie', `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
}

/**
 * Cross-site request forgery: a write must say `Content-Type: application/json` (a form or a
 * no-CORS fetch from another site cannot send that without a preflight this server never grants),
 * and its `Origin`, when the browser sends one, must be this server as the request addressed it.
 */
export function checkSameOrigin(req: IncomingMessage): void {
  // A DELETE without a body carries no type; no form or simple request can send DELETE at all.
  const bodiless = req.method === 'DELETE' && !hasBody(req);
  if (!bodiless && !isJsonType(req.headers['content-type']))
    throw new HttpError(415, 'expected Content-Type: application/json');
  const origin = req.headers.origin;
  if (origin === undefined) return;
  const host = req.headers.host;
  let ok = false;
  try {
    const u = new URL(origin);
    ok =
      host !== undefined &&
      (u.protocol === 'http:' || u.protocol === 'https:') &&
      u.host === host.toLowerCase();
  } catch {
    ok = false;
  }
  if (!ok)
    throw new HttpError(
      403,
      `cross-origin write refused (Origin ${origin.slice(0, 200)} is not this server)`,
    );
  if (req.headers['sec-fetch-site'] === 'cross-site')
    throw new HttpError(403, 'cross-site write refused (Sec-Fetch-Site: cross-site)');
}

/**
 * Everything a console write needs, in order: writes exist (FB_ADMIN_TOKEN set), the request is
 * same-origin JSON, and it carries a live session.
 */
export function requireWrite(sessions: ConsoleSessions, req: IncomingMessage): void {
  if (!sessions.writable)
    throw new HttpError(
      403,
      'the console is read-only: set FB_ADMIN_TOKEN on the collector to allow changes',
    );
  checkSameOrigin(req);
  if (sessions.valid(sessionOf(req)) === undefined)
    throw new HttpError(401, 'log in first (POST /console/login with the admin token)');
}
