import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
 * A GeoParquet answer (`f=parquet`) is built whole in memory, up to 100 × FB_API_MAX_LIMIT rows (a
 * million by default): anyone who can reach the read API could start as many as they like at once.
 * One is built at a time; another asked for meanwhile is a 503 with Retry-After, at once.
 */
let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let collector: CollectorProcess;

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  dir = tempDir('fieldbeam-parquet-builds-');
  const datasetsFile = join(dir.path, 'datasets.yaml');
  writeFileSync(datasetsFile, 'datasets:\n  - name: minutely\n    window: PT1M\n');
  collector = await startCollectorProcess({
    name: 'parquet-builds',
    natsUrl: nats.url,
    databaseUrl: postgres.url,
    dataDir: join(dir.path, 'collector'),
    env: { FB_DATASETS_FILE: datasetsFile, FB_BUILD_POLL_MS: '600000' },
  });
}, 120_000);

afterAll(async () => {
  await collector?.stop();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

const PARQUET = '/collections/minutely/items?f=parquet&datetime=2026-01-01T00:00:00Z/2026-12-31T00:00:00Z';

describe('GeoParquet answers of the read API', () => {
  it('are built one at a time: a second asked for meanwhile is a 503 with Retry-After', {
    timeout: 60_000,
  }, async () => {
    const base = `http://127.0.0.1:${collector.httpPort}`;
    // A transaction holding the table keeps the first build waiting as long as the test needs.
    const lock = new pg.Client({ connectionString: postgres.url });
    await lock.connect();
    // pg_stat_activity is read once per transaction unless its snapshot is cleared.
    const waiting = async () =>
      (await lock.query('SELECT pg_stat_clear_snapshot()')) &&
      Number(
        (
          await lock.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%count(*) AS n, min(time)%'`,
          )
        ).rows[0]?.n,
      );
    try {
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE observations IN ACCESS EXCLUSIVE MODE');
      const first = fetch(`${base}${PARQUET}`);
      await waitFor(
        'the first build waiting on the table',
        async () => ((await waiting()) >= 1 ? true : undefined),
        20_000,
      );
      // Answered while the first still waits (without the bound it would wait too, and time out here).
      const b = await fetch(`${base}${PARQUET}`);
      await lock.query('COMMIT');
      const a = await first;
      expect(a.status).toBe(200);
      expect(b.status).toBe(503);
      expect(b.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(((await b.json()) as { error: string }).error).toMatch(/f=parquet/);
      // Once it is done, the next one is built.
      expect((await fetch(`${base}${PARQUET}`)).status).toBe(200);
    } finally {
      await lock.end();
    }
  });
});
