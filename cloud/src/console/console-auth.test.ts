import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { HttpError } from '../http-api.js';
import {
  ConsoleSessions,
  checkSameOrigin,
  requireWrite,
  SESSION_COOKIE,
  sessionOf,
  setSessionCookie,
} from './console-auth.js';

const TOKEN = 'console-admin-token-0123456789';
const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
const status = (f: () => void) => {
  try {
    f();
    return 200;
  } catch (err) {
    return (err as HttpError).status;
  }
};

describe('ConsoleSessions', () => {
  it('logs in with the admin token only, and a session expires', () => {
    let now = 1_000_000;
    const s = new ConsoleSessions(TOKEN, { ttlMs: 60_000, maxSessions: 10 }, () => now);
    expect(s.login('wrong-token')).toBeUndefined();
    const started = s.login(TOKEN);
    expect(started?.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(s.valid(started?.id)).toBe(now + 60_000);
    now += 60_001;
    expect(s.valid(started?.id)).toBeUndefined();
    expect(s.size).toBe(0);
  });

  it('keeps at most maxSessions: a login beyond ends the oldest', () => {
    const s = new ConsoleSessions(TOKEN, { ttlMs: 60_000, maxSessions: 3 });
    const ids = Array.from({ length: 5 }, () => s.login(TOKEN)?.id);
    expect(s.size).toBe(3);
    expect(s.valid(ids[0])).toBeUndefined();
    expect(s.valid(ids[4])).toBeDefined();
  });

  it('without FB_ADMIN_TOKEN nobody logs in and writes are refused naming the setting', () => {
    const s = new ConsoleSessions(undefined, { ttlMs: 60_000, maxSessions: 3 });
    expect(s.writable).toBe(false);
    expect(s.login('')).toBeUndefined();
    try {
      requireWrite(s, req({ 'content-type': 'application/json' }));
      expect.unreachable();
    } catch (err) {
      expect((err as HttpError).status).toBe(403);
      expect((err as HttpError).message).toContain('FB_ADMIN_TOKEN');
    }
  });

  it('a write needs JSON, the same origin and a live session', () => {
    const s = new ConsoleSessions(TOKEN, { ttlMs: 60_000, maxSessions: 3 });
    const id = s.login(TOKEN)?.id as string;
    const ok = {
      'content-type': 'application/json',
      host: 'c.example:8080',
      cookie: `a=b; ${SESSION_COOKIE}=${id}`,
    };
    expect(status(() => requireWrite(s, req(ok)))).toBe(200);
    expect(status(() => requireWrite(s, req({ ...ok, origin: 'http://c.example:8080' })))).toBe(200);
    expect(status(() => requireWrite(s, req({ ...ok, origin: 'http://evil.example' })))).toBe(403);
    expect(status(() => requireWrite(s, req({ ...ok, origin: 'null' })))).toBe(403);
    expect(status(() => requireWrite(s, req({ ...ok, 'content-type': 'text/plain' })))).toBe(415);
    expect(
      status(() => requireWrite(s, req({ ...ok, 'content-type': 'application/x-www-form-urlencoded' }))),
    ).toBe(415);
    expect(status(() => requireWrite(s, req({ ...ok, cookie: `${SESSION_COOKIE}=forged` })))).toBe(401);
    expect(status(() => requireWrite(s, req({ ...ok, 'sec-fetch-site': 'cross-site' })))).toBe(200);
    expect(
      status(() =>
        requireWrite(s, req({ ...ok, origin: 'http://c.example:8080', 'sec-fetch-site': 'cross-site' })),
      ),
    ).toBe(403);
  });

  it('takes a DELETE without a body and without a type, but not one with a body of another type', () => {
    const s = new ConsoleSessions(TOKEN, { ttlMs: 60_000, maxSessions: 3 });
    const cookie = `${SESSION_COOKIE}=${s.login(TOKEN)?.id}`;
    const del = (headers: Record<string, string>) =>
      ({ method: 'DELETE', headers: { host: 'c:1', cookie, ...headers } }) as unknown as IncomingMessage;
    expect(status(() => requireWrite(s, del({ origin: 'http://c:1' })))).toBe(200);
    expect(status(() => requireWrite(s, del({ origin: 'http://evil:1' })))).toBe(403);
    expect(status(() => requireWrite(s, del({ 'content-length': '5', 'content-type': 'text/plain' })))).toBe(
      415,
    );
    const post = { method: 'POST', headers: { host: 'c:1', cookie } } as unknown as IncomingMessage;
    expect(status(() => requireWrite(s, post))).toBe(415);
  });

  it('sets an HttpOnly, SameSite=Strict cookie, Secure behind a TLS proxy', () => {
    const cookieOf = (headers: Record<string, string>) => {
      let value = '';
      const res = { setHeader: (_: string, v: string) => (value = v) } as unknown as ServerResponse;
      setSessionCookie(req(headers), res, 'abc', 3_600_000);
      return value;
    };
    expect(cookieOf({})).toBe(`${SESSION_COOKIE}=abc; HttpOnly; SameSite=Strict; Path=/; Max-Age=3600`);
    expect(cookieOf({ 'x-forwarded-proto': 'https' })).toMatch(/; Secure$/);
  });

  it('finds its cookie among others', () => {
    expect(sessionOf(req({ cookie: `x=1; ${SESSION_COOKIE}=abc; y=2` }))).toBe('abc');
    expect(sessionOf(req({}))).toBeUndefined();
    expect(status(() => checkSameOrigin(req({ 'content-type': 'application/json; charset=utf-8' })))).toBe(
      200,
    );
  });
});
