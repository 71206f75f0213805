import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTlcpReplayServer, type TlcpReplayServer } from '../../edge/src/iss-replay/index.js';
import type { CollectorProcess, EdgeAgentProcess } from '../harness/index.js';
import { rawGet, rawRequest } from './http-raw.js';
import { type HttpTargets, startHttpTargets } from './http-targets.js';

/**
 * Single requests that once ended or confused an HTTP server of the system, each sent as raw bytes
 * (a client library would refuse to send most of them): the answer is a 4xx and the process lives on.
 */
let targets: HttpTargets;
let collector: CollectorProcess;
let edge: EdgeAgentProcess;
let replay: TlcpReplayServer;

const HOST = '127.0.0.1';

beforeAll(async () => {
  [targets, replay] = await Promise.all([startHttpTargets('http-probes'), createTlcpReplayServer()]);
  ({ collector, edge } = targets);
}, 120_000);

afterAll(async () => {
  await Promise.all([targets?.close(), replay?.close()]);
});

const error = (body: string) => (JSON.parse(body) as { error: string }).error;

describe('collector HTTP API', () => {
  it.each([
    ['//[', 400],
    ['//%', 400],
    ['/%zz', 400],
    ['/collections/[x]', 400],
    // A valid path (empty segments are allowed) that names no route.
    ['//x:99999/', 404],
  ])('answers GET %s with %i and lives on', async (target, status) => {
    const answer = await rawGet(HOST, collector.httpPort, target);
    expect(answer.wellFormed).toBe(true);
    expect(answer.statuses).toEqual([status]);
    expect((await collector.health())?.status).toBe(200);
    expect(collector.crashes).toEqual([]);
  });

  it('answers absolute-form targets like their path', async () => {
    const answer = await rawGet(HOST, collector.httpPort, `http://127.0.0.1:${collector.httpPort}/healthz`);
    expect(answer.statuses).toEqual([200]);
    const bad = await rawGet(HOST, collector.httpPort, 'http://[/healthz');
    expect(bad.statuses).toEqual([400]);
  });

  it('answers malformed HTTP with 400 and closes', async () => {
    const answer = await rawRequest(HOST, collector.httpPort, 'GARBAGE\r\n\r\n');
    expect(answer.wellFormed).toBe(true);
    expect(answer.statuses).toEqual([400]);
  });

  it('refuses an out-of-range cursor with 400 and no database text', async () => {
    const cursor = Buffer.from(`99999999999999999999_${'a'.repeat(64)}`).toString('base64url');
    const answer = await rawGet(HOST, collector.httpPort, `/collections/minutely/items?cursor=${cursor}`);
    expect(answer.statuses).toEqual([400]);
    expect(error(answer.body)).toMatch(/cursor/);
    expect(answer.body).not.toMatch(/syntax|timestamp|postgres/i);
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty'])(
    'refuses within-units=%s with 400',
    async (units) => {
      const answer = await rawGet(
        HOST,
        collector.httpPort,
        `/collections/minutely/position?coords=POINT(7%2046)&within=1&within-units=${units}`,
      );
      expect(answer.statuses).toEqual([400]);
      expect(error(answer.body)).toMatch(/within-units/);
    },
  );

  it('refuses text Postgres cannot take (NUL) in parameter-name with 400', async () => {
    const answer = await rawGet(HOST, collector.httpPort, '/collections/minutely/items?parameter-name=a%00b');
    expect(answer.statuses).toEqual([400]);
    expect(error(answer.body)).toMatch(/parameter-name/);
  });

  it.each([
    // A feature id whose time Postgres cannot hold, and one that is not an id at all.
    [`/collections/minutely/items/99999999999999999_${'a'.repeat(64)}_gw`, 400, /featureId/],
    ['/collections/minutely/items/%00', 400, /featureId/],
    ['/collections/minutely/locations/a%00b', 400, /locationId/],
    [`/collections/minutely/locations/${'x'.repeat(201)}`, 400, /locationId/],
    ['/collections/minutely/items?f=xml', 400, /^f: one of/],
    ['/collections/minutely/items?limit=1e3', 400, /limit/],
    // GeoParquet needs a closed datetime; the years Postgres cannot hold are answered, not failed.
    ['/collections/minutely/items?f=parquet&datetime=2026-01-01T00:00:00Z/..', 400, /f=parquet/],
    [
      '/collections/minutely/items?f=parquet&datetime=0000-01-01T00:00:00Z/9999-12-31T23:59:59Z',
      200,
      undefined,
    ],
    ['/collections/minutely/items?f=parquet&datetime=0000-01-01T00:00:00Z', 200, undefined],
    ['/collections/minutely/items?f=csv&datetime=0000-01-01T00:00:00Z/..', 200, undefined],
    ['/collections/minutely/locations/st-1?f=covjson&datetime=../9999-12-31T23:59:59Z', 404, /no location/],
    ['/collections/minutely/locations?datetime=0000-01-01T00:00:00Z/..&f=csv', 200, undefined],
    ['/collections/minutely/locations/st-1?f=parquet&datetime=0000-01-01T00:00:00Z', 404, /no location/],
    ['/collections/minutely/locations/st-1?f=parquet', 400, /f=parquet/],
    // An aggregated collection: its ids, a raw id, and a GeoParquet range no timestamp can hold.
    [`/collections/minutely_agg/items/1764892800000_${'b'.repeat(32)}`, 404, /no feature/],
    [`/collections/minutely_agg/items/1764892800000_${'a'.repeat(64)}_gw`, 400, /featureId/],
    [`/collections/minutely/items/1764892800000_${'b'.repeat(32)}`, 400, /featureId/],
    [
      '/collections/minutely_agg/items?f=parquet&datetime=0000-01-01T00:00:00Z/9999-12-31T23:59:59Z',
      200,
      undefined,
    ],
    ['/collections/minutely_agg/items?datetime=0000-01-01T00:00:00Z/..&f=csv', 200, undefined],
    [
      `/collections/minutely_agg/items?cursor=${Buffer.from(`5_${'c'.repeat(32)}`).toString('base64url')}`,
      200,
      undefined,
    ],
  ])('answers GET %s with %i', async (target, status, message) => {
    const answer = await rawGet(HOST, collector.httpPort, target);
    expect(answer.statuses, answer.body).toEqual([status]);
    if (message) expect(error(answer.body)).toMatch(message);
    if (status >= 400) expect(answer.body).not.toMatch(/syntax|timestamp|postgres|internal/i);
  });

  it('refuses a declared body over the limit with 413 before routing', async () => {
    const answer = await rawRequest(
      HOST,
      collector.httpPort,
      'POST /admin/datasets/minutely/rebuild?window=2026-01-01T00:00:00Z HTTP/1.1\r\nHost: x\r\n' +
        'Content-Length: 10485760\r\n\r\n',
    );
    expect(answer.statuses).toEqual([413]);
    expect(collector.crashes).toEqual([]);
  });
});

describe('edge agent HTTP status', () => {
  it.each(['//[', '//%', '//x:99999/'])('answers GET %s with a 4xx and lives on', async (target) => {
    const answer = await rawGet(HOST, edge.httpPort, target);
    expect(answer.wellFormed).toBe(true);
    expect(answer.statuses[0]).toBeGreaterThanOrEqual(400);
    expect(answer.statuses[0]).toBeLessThan(500);
    expect((await edge.status())?.ok).toBe(true);
    expect(edge.crashes).toEqual([]);
  });

  it('refuses headers beyond its bound with 431', async () => {
    const answer = await rawGet(HOST, edge.httpPort, '/healthz', `X-Big: ${'a'.repeat(12 * 1024)}\r\n`);
    expect(answer.statuses).toEqual([431]);
    expect((await edge.status())?.ok).toBe(true);
  });
});

describe('TLCP replay server', () => {
  // Read as a path, not as `//host`: a path that names no endpoint.
  it.each(['//[', '//%'])('answers a WebSocket upgrade to %s with 404 and lives on', async (target) => {
    const answer = await rawGet(
      HOST,
      replay.port,
      target,
      'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
    );
    expect(answer.statuses).toEqual([404]);
    const ok = await fetch(`${replay.url}/lightstreamer/create_session.txt`, { method: 'GET' });
    expect(ok.status).toBe(404);
  });
});
