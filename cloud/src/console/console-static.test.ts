import { mkdirSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { HttpError } from '../http-api.js';
import { ConsoleFiles, wantsHtml } from './console-static.js';

class FakeRes {
  headers: Record<string, unknown> = {};
  status = 0;
  body: Buffer | undefined;
  setHeader(k: string, v: unknown) {
    this.headers[k] = v;
  }
  writeHead(status: number, h: Record<string, unknown> = {}) {
    this.status = status;
    Object.assign(this.headers, h);
    return this;
  }
  end(body?: Buffer) {
    this.body = body;
  }
}

function folder() {
  const dir = join(tmpdir(), `fb-console-static-${process.pid}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(dir, 'img'), { recursive: true });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><script src="/console/app.ABCDEFGH.js"></script>');
  writeFileSync(join(dir, 'app.ABCDEFGH.js'), 'console.log(1)');
  writeFileSync(join(dir, 'img', 'logo.svg'), '<svg/>');
  writeFileSync(join(dir, '.secret.js'), 'no');
  return dir;
}

const serve = (files: ConsoleFiles, segments: string[], etag?: string) => {
  const res = new FakeRes();
  try {
    files.serve(res as unknown as ServerResponse, etag, segments);
  } catch (err) {
    res.status = (err as HttpError).status;
  }
  return res;
};

describe('ConsoleFiles', () => {
  it('serves files by plain name with an ETag, a year of cache for hashed names, and the CSP', () => {
    const files = new ConsoleFiles(folder());
    const res = serve(files, ['app.ABCDEFGH.js']);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(String(res.body)).toBe('console.log(1)');
    expect(serve(files, ['app.ABCDEFGH.js'], res.headers.etag as string).status).toBe(304);
    expect(serve(files, ['img', 'logo.svg']).status).toBe(200);
  });

  it.each([
    [['..', 'package.json']],
    [['..']],
    [['.secret.js']],
    [['../index.html']],
    [['img/../index.html']],
    [['..%2Findex.html']],
    [['index.html\u0000.js']],
    [['img', '..', 'index.html']],
    [['a', 'b', 'c.js']],
    [['nope.js']],
    [['app.ABCDEFGH.exe']],
    [['C:\\windows.js']],
  ])('refuses %j with a 404', (segments) => {
    expect(serve(new ConsoleFiles(folder()), segments).status).toBe(404);
  });

  it('answers the shell, or 503 naming the fix when the app is not built', () => {
    const res = new FakeRes();
    new ConsoleFiles(folder()).shell(res as unknown as ServerResponse, undefined);
    expect(res.status).toBe(200);
    expect(res.headers['cache-control']).toBe('no-cache');
    try {
      new ConsoleFiles(join(tmpdir(), 'fb-no-such-console')).shell(
        new FakeRes() as unknown as ServerResponse,
        undefined,
      );
      expect.unreachable();
    } catch (err) {
      expect((err as HttpError).status).toBe(503);
      expect((err as HttpError).message).toContain('pnpm build');
    }
  });
});

describe('wantsHtml', () => {
  it.each([
    ['text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', true],
    ['text/html', true],
    [undefined, false],
    ['*/*', false],
    ['application/json', false],
    ['application/json, text/html;q=0.5', false],
    ['text/html;q=0', false],
    ['text/html;q=0.9, application/json', false],
  ])('%s -> %s', (accept, html) => {
    expect(wantsHtml(accept)).toBe(html);
  });
});
