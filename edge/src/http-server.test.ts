import { connect } from 'node:net';
import { Gauge, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { type StatusHttpLimits, type StatusHttpServer, startStatusHttp } from './http-server.js';

/** Writes raw bytes, half-closes unless told not to, and returns what came back before the close. */
function raw(port: number, bytes: string, end = true): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let out = '';
    socket.on('data', (d: Buffer) => {
      out += d.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(out));
    socket.on('connect', () => (end ? socket.end(bytes) : socket.write(bytes)));
  });
}
const status = (answer: string) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(answer)?.[1]);
const get = (target: string, method = 'GET') => `${method} ${target} HTTP/1.1\r\nHost: x\r\n\r\n`;

let server: StatusHttpServer | undefined;
let registry: Registry;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(limits: Partial<StatusHttpLimits> = {}) {
  registry = new Registry();
  server = await startStatusHttp({ host: '127.0.0.1', port: 0, limits }, registry, () => ({ ok: true }));
  return server.port;
}
const refused = async () =>
  Object.fromEntries(
    ((await registry.getSingleMetric('fb_edge_http_refused_total')?.get())?.values ?? []).map((v) => [
      v.labels.status,
      v.value,
    ]),
  );

describe('edge status HTTP server', () => {
  it('serves /healthz and /metrics to GET and HEAD, with a query string too', async () => {
    const port = await start();
    expect(status(await raw(port, get('/healthz?x=1')))).toBe(200);
    expect(status(await raw(port, get('/metrics')))).toBe(200);
    expect(status(await raw(port, get('/healthz', 'HEAD')))).toBe(200);
  });

  it('answers /metrics (async) to a client that half-closes after its request', async () => {
    const port = await start();
    // A collector that takes a while, as the process metrics can on a busy Pi.
    new Gauge({
      name: 'slow_collect',
      help: 'takes 50 ms to collect',
      registers: [registry],
      async collect() {
        await new Promise((resolve) => setTimeout(resolve, 50));
        this.set(1);
      },
    });
    const answer = await raw(port, `${get('/metrics')}${get('/metrics')}`);
    expect(answer.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
  });

  it('refuses targets that are not paths, other methods and unknown paths, counted', async () => {
    const port = await start();
    expect(status(await raw(port, get('//[')))).toBe(400);
    expect(status(await raw(port, get('/%zz')))).toBe(400);
    expect(status(await raw(port, get('*', 'OPTIONS')))).toBe(400);
    const post = await raw(port, 'POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc');
    expect(status(post)).toBe(405);
    expect(post).toMatch(/allow: GET, HEAD/i);
    expect(status(await raw(port, get('//x:99999/')))).toBe(404);
    expect(status(await raw(port, get('example.org:443', 'CONNECT')))).toBe(405);
    expect(await refused()).toEqual({ '400': 3, '404': 1, '405': 2 });
  });

  it('answers malformed HTTP and oversized headers, counted', async () => {
    const port = await start({ maxHeaderBytes: 2048 });
    expect(status(await raw(port, 'NOT HTTP AT ALL\r\n\r\n'))).toBe(400);
    expect(
      status(await raw(port, get('/healthz').replace('\r\n\r\n', `\r\nX: ${'a'.repeat(3000)}\r\n\r\n`))),
    ).toBe(431);
    expect(await refused()).toEqual({ '400': 1, '431': 1 });
  });

  it('ends a request whose headers never complete with 408', async () => {
    const port = await start({ headersTimeoutMs: 200, requestTimeoutMs: 300, checkIntervalMs: 50 });
    expect(status(await raw(port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', false))).toBe(408);
  });

  it('can start again on the same registry', async () => {
    await start();
    await server?.close();
    server = await startStatusHttp({ host: '127.0.0.1', port: 0 }, registry, () => ({ ok: true }));
    expect(server.port).not.toBe(0);
    expect(status(await raw(server.port, get('/nope')))).toBe(404);
  });
});
