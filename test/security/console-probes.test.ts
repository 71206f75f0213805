import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CollectorProcess } from '../harness/index.js';
import { rawGet, rawRequest } from './http-raw.js';
import { ADMIN_TOKEN, type HttpTargets, startHttpTargets } from './http-targets.js';

/**
 * The operator console's HTTP surface probed with raw bytes: paths that try to leave the app's
 * folder, request bodies too large, slow, of another type or not JSON, forged sessions and other
 * origins, and event streams opened oddly. Every answer is a 4xx (or the 2xx it should be) and the
 * collector lives on.
 */
let targets: HttpTargets;
let collector: CollectorProcess;
const HOST = '127.0.0.1';

beforeAll(async () => {
  targets = await startHttpTargets('console-probes');
  ({ collector } = targets);
}, 120_000);

afterAll(async () => {
  await targets?.close();
});

const post = (path: string, body: string, headers = 'Content-Type: application/json\r\n') =>
  rawRequest(
    HOST,
    collector.httpPort,
    `POST ${path} HTTP/1.1\r\nHost: x\r\n${headers}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );

const alive = async () => {
  expect((await collector.health())?.status).toBe(200);
  expect(collector.crashes).toEqual([]);
};

describe('console HTTP surface', () => {
  it.each([
    '/console/../package.json',
    '/console/%2e%2e/%2e%2e/package.json',
    '/console/..%2F..%2Fpackage.json',
    '/console/..%5C..%5Cpackage.json',
    '/console/%00.js',
    '/console/index.html%00.js',
    '/console/.hidden.js',
    '/console/a/b/c/d.js',
    '/console/app.js/',
    '/console/%252e%252e/x.js',
    '/console/C:%5Cwindows.js',
  ])('GET %s leaves nothing of the folder behind: a 4xx', async (target) => {
    const answer = await rawGet(HOST, collector.httpPort, target);
    expect(answer.wellFormed).toBe(true);
    const status = answer.statuses[0] ?? 0;
    expect(status >= 400 && status < 500, `${status} ${answer.body}`).toBe(true);
    expect(answer.body).not.toContain('"name"');
    await alive();
  });

  it('answers a browser at / with the shell and its headers, a HEAD without a body', async () => {
    const html = await rawGet(HOST, collector.httpPort, '/', 'Accept: text/html\r\n');
    expect(html.statuses).toEqual([200]);
    expect(html.text).toMatch(/content-security-policy: default-src 'self'; script-src 'self'/i);
    expect(html.text).toMatch(/x-content-type-options: nosniff/i);
    expect(html.text).toMatch(/referrer-policy: no-referrer/i);
    const head = await rawRequest(
      HOST,
      collector.httpPort,
      'HEAD /console/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(head.statuses).toEqual([200]);
    expect(head.body).toBe('');
  });

  it('refuses bodies too large, declared or sent, of another type, or not JSON', async () => {
    const big = await post('/console/login', JSON.stringify({ token: 'x'.repeat(20_000) }));
    expect(big.statuses).toEqual([413]);
    // Chunked, no length declared: reading stops at the bound.
    const chunk = 'a'.repeat(8192);
    const chunks = Array.from({ length: 4 }, () => `${(8192).toString(16)}\r\n${chunk}\r\n`).join('');
    const chunked = await rawRequest(
      HOST,
      collector.httpPort,
      `POST /console/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}0\r\n\r\n`,
    );
    expect(chunked.statuses).toEqual([413]);
    expect(
      (await post('/console/login', `{"token":"${ADMIN_TOKEN}"}`, 'Content-Type: text/plain\r\n')).statuses,
    ).toEqual([415]);
    expect(
      (
        await post(
          '/console/login',
          `token=${ADMIN_TOKEN}`,
          'Content-Type: application/x-www-form-urlencoded\r\n',
        )
      ).statuses,
    ).toEqual([415]);
    expect((await post('/console/login', '{"token":')).statuses).toEqual([400]);
    expect((await post('/console/login', '[]')).statuses).toEqual([400]);
    expect((await post('/console/login', '{"token":"x","__proto__":{"a":1}}')).statuses).toEqual([400]);
    await alive();
  });

  it('cuts off a body that trickles in (408), without holding the server', async () => {
    const started = Date.now();
    const answer = await new Promise<string>((resolve) => {
      const socket = connect({ host: HOST, port: collector.httpPort });
      let text = '';
      socket.on('data', (d) => {
        text += d.toString('latin1');
      });
      socket.on('close', () => resolve(text));
      socket.on('error', () => {});
      socket.write(
        'POST /console/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"to',
      );
    });
    // The body's own timeout (10 s) or the server's request timeout (30 s) ends it, whichever first.
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - started).toBeLessThan(60_000);
    await alive();
  }, 90_000);

  it('refuses writes with a forged session, from another origin, and a wrong token', async () => {
    const sensor = JSON.stringify({
      sensor: { topic: 'a/b', decoder: { type: 'number', variable: 'x', unit: '' } },
    });
    expect(
      (
        await post(
          '/console/api/edges/gw-1/sensors',
          sensor,
          'Content-Type: application/json\r\nCookie: fb_console=forged\r\n',
        )
      ).statuses,
    ).toEqual([401]);
    expect(
      (
        await post(
          '/console/login',
          `{"token":"${ADMIN_TOKEN}"}`,
          'Content-Type: application/json\r\nOrigin: http://evil.example\r\n',
        )
      ).statuses,
    ).toEqual([403]);
    expect(
      (
        await post(
          '/console/login',
          `{"token":"${ADMIN_TOKEN}"}`,
          'Content-Type: application/json\r\nOrigin: null\r\n',
        )
      ).statuses,
    ).toEqual([403]);
    expect((await post('/console/login', '{"token":"not-the-token-not-the-token"}')).statuses).toEqual([401]);
    const login = await post(
      '/console/login',
      `{"token":"${ADMIN_TOKEN}"}`,
      'Content-Type: application/json\r\nOrigin: http://x\r\n',
    );
    expect(login.statuses).toEqual([200]);
    expect(login.text).toMatch(
      /set-cookie: fb_console=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\//i,
    );
    await alive();
  });

  it('opens event streams only as they should be: a bad query is 400, a HEAD ends, a half-closed client gets its stream', async () => {
    for (const q of [
      'edge=a&station=b',
      'edge=a.b&station=s&variable=v',
      `edge=a&station=${'s'.repeat(300)}&variable=v`,
    ]) {
      expect((await rawGet(HOST, collector.httpPort, `/console/events?${q}`)).statuses, q).toEqual([400]);
    }
    const head = await rawRequest(
      HOST,
      collector.httpPort,
      'HEAD /console/events HTTP/1.1\r\nHost: x\r\n\r\n',
      5000,
    );
    expect(head.statuses).toEqual([200]);
    // A client that sends its request and half-closes still gets a stream (then the fleet), and
    // leaving frees its place.
    const stream = await rawRequest(
      HOST,
      collector.httpPort,
      'GET /console/events HTTP/1.1\r\nHost: x\r\n\r\n',
      3000,
    );
    expect(stream.statuses).toEqual([200]);
    expect(stream.text).toMatch(/content-type: text\/event-stream/i);
    expect(stream.body).toContain('event: fleet');
    await alive();
  });
});
