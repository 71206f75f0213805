import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { subjects } from '@fieldbeam/protocol';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CollectorProcess,
  type NatsServer,
  startCollectorProcess,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';

/**
 * The collector's `/admin/...` routes as its own process: they need the bearer token, are off without
 * one configured, list dead letters and make a window due.
 */
const TOKEN = randomBytes(24).toString('hex');
const DATASETS = `datasets:
  - name: minutely
    filter: { variables: [air_temperature] }
    window: PT1M
`;

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let db: pg.Pool;
let guarded: CollectorProcess;
let open: CollectorProcess;

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  dir = tempDir('fieldbeam-admin-');
  const datasetsFile = join(dir.path, 'datasets.yaml');
  writeFileSync(datasetsFile, DATASETS);
  db = new pg.Pool({ connectionString: postgres.url });
  // Idle connections end when Postgres stops at the end: not an error of the test.
  db.on('error', () => {});
  const common = { natsUrl: nats.url, databaseUrl: postgres.url };
  guarded = await startCollectorProcess({
    ...common,
    name: 'guarded',
    dataDir: join(dir.path, 'guarded'),
    env: { FB_ADMIN_TOKEN: TOKEN, FB_DATASETS_FILE: datasetsFile, FB_BUILD_POLL_MS: '600000' },
  });
  open = await startCollectorProcess({ ...common, name: 'no-token', dataDir: join(dir.path, 'no-token') });
}, 120_000);

afterAll(async () => {
  await Promise.all([guarded?.stop(), open?.stop()]);
  await db?.end();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

const call = (c: CollectorProcess, path: string, init: RequestInit & { token?: string } = {}) => {
  const { token, ...rest } = init;
  return fetch(`http://127.0.0.1:${c.httpPort}${path}`, {
    ...rest,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
};

describe('admin routes', () => {
  it('refuse requests without the token or with a wrong one', async () => {
    const missing = await call(guarded, '/admin/dead-letters');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await missing.json()) as { error: string }).error).toMatch(/admin token required/);

    const wrong = await call(guarded, '/admin/dead-letters', { token: `${TOKEN.slice(0, -1)}x` });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: string }).error).toBe('wrong admin token');

    const rebuild = await call(guarded, '/admin/datasets/minutely/rebuild?window=2026-01-01T00:00:00Z', {
      method: 'POST',
    });
    expect(rebuild.status).toBe(401);
    // Nothing was made due by the refused call.
    expect((await db.query('SELECT 1 FROM dataset_windows')).rowCount).toBe(0);
  });

  it('are off (403) on a collector without FB_ADMIN_TOKEN, whatever token is sent', async () => {
    const r = await call(open, '/admin/dead-letters', { token: TOKEN });
    expect(r.status).toBe(403);
    expect(((await r.json()) as { error: string }).error).toMatch(/FB_ADMIN_TOKEN/);
  });

  it('list dead letters with their reasons, newest first, with the token', async () => {
    const nc = await connect({ servers: nats.url });
    try {
      nc.publish(subjects.obs('gw-admin'), new TextEncoder().encode('{"not": "a batch"'));
      nc.publish(subjects.obs('gw-admin'), Buffer.from([0xff, 0xfe, 0x00]));
      await nc.flush();
    } finally {
      await nc.close();
    }
    type Listed = {
      deadLetters: { id: number; reason: string; subject: string; encoding: string; payload: string }[];
    };
    const listed = await waitFor(
      'both dead letters listed',
      async () => {
        const r = await call(guarded, '/admin/dead-letters?limit=10', { token: TOKEN });
        expect(r.status).toBe(200);
        const body = (await r.json()) as Listed;
        return body.deadLetters.length === 2 ? body : undefined;
      },
      30_000,
    );
    const [newest, oldest] = listed.deadLetters;
    expect(newest && oldest && newest.id > oldest.id).toBe(true);
    expect(oldest).toMatchObject({
      subject: 'fb.obs.gw-admin',
      encoding: 'utf8',
      payload: '{"not": "a batch"',
    });
    expect(oldest?.reason).toMatch(/JSON/i);
    expect(newest).toMatchObject({
      encoding: 'base64',
      payload: Buffer.from([0xff, 0xfe, 0x00]).toString('base64'),
    });
    expect(newest?.reason).toMatch(/UTF-8/i);

    const page = (await (
      await call(guarded, `/admin/dead-letters?limit=10&before=${newest?.id}`, { token: TOKEN })
    ).json()) as Listed;
    expect(page.deadLetters.map((d) => d.id)).toEqual([oldest?.id]);

    const bad = await call(guarded, '/admin/dead-letters?limit=0', { token: TOKEN });
    expect(bad.status).toBe(400);
  });

  it('make a window due on POST .../rebuild, and say why when they cannot', async () => {
    const r = await call(guarded, '/admin/datasets/minutely/rebuild?window=2026-03-04T05:06:30Z', {
      method: 'POST',
      token: TOKEN,
    });
    expect(r.status).toBe(202);
    expect(await r.json()).toEqual({ dataset: 'minutely', window: '2026-03-04T05:06:00Z', due: 'now' });
    const row = await db.query<{ due: boolean }>(
      `SELECT due_at IS NOT NULL AS due FROM dataset_windows WHERE dataset = 'minutely' AND window_start = $1`,
      ['2026-03-04T05:06:00Z'],
    );
    expect(row.rows).toEqual([{ due: true }]);

    const unknown = await call(guarded, '/admin/datasets/hourly/rebuild?window=2026-03-04T05:06:30Z', {
      method: 'POST',
      token: TOKEN,
    });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: string }).error).toMatch(/no dataset "hourly".*minutely/);
    const badTime = await call(guarded, '/admin/datasets/minutely/rebuild?window=yesterday', {
      method: 'POST',
      token: TOKEN,
    });
    expect(badTime.status).toBe(400);
    // The route takes POST only: a GET (a crawler, a link) changes nothing.
    const get = await call(guarded, '/admin/datasets/minutely/rebuild?window=2026-03-04T07:00:00Z', {
      token: TOKEN,
    });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
  });
});
