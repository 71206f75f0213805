import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpError } from '../http-api.js';

/** The built browser app (cloud/dist/console-app/, beside this module's folder once compiled). */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../console-app/', import.meta.url));

/**
 * Headers of every console answer: a Content-Security-Policy that allows no inline script, no
 * other origin and no framing; no MIME sniffing; no Referer (URLs can name edges).
 */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
});

export function setConsoleHeaders(res: ServerResponse): void {
  for (const [k, v] of Object.entries(CONSOLE_HEADERS)) res.setHeader(k, v);
}

const TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json',
  map: 'application/json',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  woff2: 'font/woff2',
  txt: 'text/plain; charset=utf-8',
};

/**
 * A name the app's folder may hold: letters, digits, `.`, `_`, `-`, not starting with a dot, with a
 * known extension. Nothing else (no `..`, no slash or backslash, no NUL, no percent-encoded tricks:
 * the router decoded the segment already) is ever joined to the folder.
 */
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** `app.3f9a1c2b.js`: a content hash in the name means the file never changes under it. */
const HASHED = /\.[0-9a-zA-Z_-]{8,}\.[a-z0-9]+$/;

interface Cached {
  mtimeMs: number;
  size: number;
  body: Buffer;
  etag: string;
}

/**
 * Serves the console's built files by name from one folder, read once per change (the folder is a
 * few hundred kB) and answered with an ETag; hashed names are cached by browsers for a year.
 */
export class ConsoleFiles {
  private readonly cache = new Map<string, Cached>();

  constructor(readonly dir: string) {}

  /** Whether a segment names a file (it has a dot) rather than a page of the app. */
  static isFileName(segment: string): boolean {
    return segment.includes('.');
  }

  /** Answers `GET /console/<name>` (`sub/name` for one folder level). 404 for anything not a plain file there. */
  serve(
    res: ServerResponse,
    ifNoneMatch: string | undefined,
    segments: readonly string[],
    head = false,
  ): void {
    if (segments.length === 0 || segments.length > 2 || !segments.every((s) => FILE_NAME.test(s)))
      throw new HttpError(404, 'no such console file');
    const name = segments.join('/');
    const ext = name.split('.').at(-1) ?? '';
    const type = TYPES[ext];
    if (!type) throw new HttpError(404, 'no such console file');
    const file = this.read(name);
    if (!file) throw new HttpError(404, 'no such console file');
    this.send(res, file, type, HASHED.test(name), ifNoneMatch, head);
  }

  /** The app's shell (index.html) for `/` and every page path; 503 when the app is not built. */
  shell(res: ServerResponse, ifNoneMatch: string | undefined, head = false): void {
    const file = this.read('index.html');
    if (!file)
      throw new HttpError(
        503,
        `the console is not built (no index.html in ${this.dir}); run pnpm build, or set FB_CONSOLE_DIR`,
      );
    this.send(res, file, TYPES.html as string, false, ifNoneMatch, head);
  }

  private read(name: string): Cached | undefined {
    const path = join(this.dir, name);
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(path);
    } catch {
      return undefined;
    }
    if (!st.isFile()) return undefined;
    const seen = this.cache.get(name);
    if (seen && seen.mtimeMs === st.mtimeMs && seen.size === st.size) return seen;
    // Bounded by the folder's own files: names come from requests only after the check above, and a
    // name with no file is not cached.
    const body = readFileSync(path);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    const entry = { mtimeMs: st.mtimeMs, size: st.size, body, etag };
    this.cache.set(name, entry);
    return entry;
  }

  private send(
    res: ServerResponse,
    file: Cached,
    type: string,
    immutable: boolean,
    ifNoneMatch: string | undefined,
    head: boolean,
  ): void {
    setConsoleHeaders(res);
    res.setHeader('etag', file.etag);
    res.setHeader('cache-control', immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (ifNoneMatch?.split(',').some((t) => t.trim() === file.etag)) {
      res.writeHead(304).end();
      return;
    }
    res.writeHead(200, { 'content-type': type, 'content-length': file.body.length });
    res.end(head ? undefined : file.body);
  }
}

/**
 * Whether `Accept` prefers HTML (a browser navigating) over JSON. Clients that send no Accept,
 * `*\/*` or `application/json` get JSON, as before the console existed.
 */
export function wantsHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  let html = -1;
  let json = -1;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    const weight = Number.isFinite(q) ? q : 0;
    if (type === 'text/html') html = Math.max(html, weight);
    if (type === 'application/json' || type === 'application/geo+json') json = Math.max(json, weight);
  }
  return html > 0 && html > json;
}
