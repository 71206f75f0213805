import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CloudErrorCode } from './errors.js';
import { type HttpApi, HttpError, type HttpLimits, startHttpApi } from './http-api.js';

/** Writes raw bytes, half-closes, and returns whatever the server sent before it closed. */
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

let api: HttpApi | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

async function start(limits: Partial<HttpLimits> = {}) {
  const logged: { obj: Record<string, unknown>; msg: string }[] = [];
  const errors: number[] = [];
  api = await startHttpApi(
    {
      host: '127.0.0.1',
      port: 0,
      log: { error: (obj, msg) => logged.push({ obj: obj as Record<string, unknown>, msg }) },
      onError: (s) => errors.push(s),
      limits,
    },
    {
      '/ok': ({ res }) => {
        res.writeHead(200).end('ok');
      },
      '/throws': () => {
        throw new Error('connection to 10.0.0.5 refused: password authentication failed for user "x"');
      },
      '/rejects': async () => {
        throw new Error('relation "secret_table" does not exist');
      },
      '/slow': async ({ res }) => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        res.writeHead(200).end('late');
      },
      '/slower': async ({ res }) => {
        await new Promise((resolve) => setTimeout(resolve, 400));
        res.writeHead(200).end('late');
      },
      '/refuses': () => {
        throw new HttpError(400, 'limit: expected a positive integer');
      },
    },
  );
  return { port: api.port, logged, errors };
}

describe('collector HTTP API', () => {
  it('answers a route that throws with a 500 that names a code and a ref, never the cause', async () => {
    const { port, logged, errors } = await start();
    for (const path of ['/throws', '/rejects']) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`);
      expect(res.status).toBe(500);
      const body = (await res.json()) as { error: string; code: string; ref: string };
      expect(body.code).toBe(CloudErrorCode.HTTP_INTERNAL);
      expect(JSON.stringify(body)).not.toMatch(/password|10\.0\.0\.5|secret_table/);
      expect(logged.find((l) => l.obj.ref === body.ref)?.obj.err).toBeInstanceOf(Error);
    }
    expect(errors).toEqual([500, 500]);
  });

  it('answers an HttpError with its status and message', async () => {
    const { port, errors } = await start();
    const res = await fetch(`http://127.0.0.1:${port}/refuses`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'limit: expected a positive integer' });
    expect(errors).toEqual([400]);
  });

  it('answers a target that is not a path with 400 before routing', async () => {
    const { port, errors } = await start();
    const answer = await raw(port, 'GET //[ HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(status(answer)).toBe(400);
    expect(answer).toMatch(/request target/);
    expect(status(await raw(port, 'GET /ok HTTP/1.1\r\nHost: x\r\n\r\n'))).toBe(200);
    expect(errors).toEqual([400]);
  });

  it('answers a client that half-closes after its request, also from an async route', async () => {
    const { port } = await start();
    const answer = await raw(
      port,
      'GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    expect(answer.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
  });

  it('answers malformed HTTP with 400 and closes, counted', async () => {
    const { port, errors } = await start();
    const answer = await raw(port, 'GET /ok HTTP/1.1\r\nBad Header\r\n\r\n');
    expect(status(answer)).toBe(400);
    expect(answer).toMatch(/Connection: close/);
    expect(errors).toEqual([400]);
  });

  it('answers CONNECT with 405 instead of dropping the connection', async () => {
    const { port, errors } = await start();
    const answer = await raw(port, 'CONNECT example.org:443 HTTP/1.1\r\nHost: example.org\r\n\r\n');
    expect(status(answer)).toBe(405);
    expect(errors).toEqual([405]);
  });

  it('answers headers beyond maxHeaderBytes with 431', async () => {
    const { port } = await start({ maxHeaderBytes: 4096 });
    const answer = await raw(port, `GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(5000)}\r\n\r\n`);
    expect(status(answer)).toBe(431);
  });

  it('refuses a declared body over maxBodyBytes with 413', async () => {
    const { port } = await start({ maxBodyBytes: 100 });
    const answer = await raw(port, 'GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n');
    expect(status(answer)).toBe(413);
  });

  it('bounds receiving the request, not the answer: a slow route still answers', async () => {
    const { port } = await start({ headersTimeoutMs: 100, requestTimeoutMs: 100, checkIntervalMs: 20 });
    const res = await fetch(`http://127.0.0.1:${port}/slower`);
    expect(res.status).toBe(200);
  });

  it('closes a request whose headers do not arrive within headersTimeout with 408', async () => {
    const { port, errors } = await start({
      headersTimeoutMs: 200,
      requestTimeoutMs: 300,
      checkIntervalMs: 50,
    });
    // The socket stays open for writing: only the server's timeout can end this.
    const answer = await raw(port, 'GET /ok HTTP/1.1\r\nHost: x\r\n', false);
    expect(status(answer)).toBe(408);
    expect(errors).toEqual([408]);
  });
});
