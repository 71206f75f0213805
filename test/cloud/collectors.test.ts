import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDatasets, WindowStore } from '@fieldbeam/cloud';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cloudCli,
  freePort,
  type NatsServer,
  readMetric,
  type S3Server,
  type Spawned,
  spawnProcess,
  startNatsServer,
  startPostgres,
  startS3rver,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';
import { publishObservations, reading } from './fixtures.js';

/**
 * Two collector processes on one stream, one database and one (S3) object store: they share ingest,
 * coordination, builds and exports; ingest is exactly-once in effect, no window is ever built by both
 * at once, and a collector killed in the middle of a build leaves nothing stuck.
 */
const MINUTE = 60_000;
// 08:00 UTC the day before yesterday: recent enough for the collector's accepted time range.
const T0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 2 * 86_400_000 + 8 * 3_600_000;
const WINDOWS = 20;
const PER_WINDOW = 1500;
const DATASETS = `datasets:
  - name: minutely
    filter: { variables: [air_temperature] }
    window: PT1M
    grace: PT0.5S
    debounce: PT0.2S
`;

let nats: NatsServer;
let postgres: TestPostgres;
let s3: S3Server;
let dir: TempDir;
let db: pg.Pool;
const collectors = new Map<string, { proc: Spawned; port: number }>();

async function startCollector(id: string): Promise<void> {
  const port = await freePort();
  const proc = spawnProcess(process.execPath, [cloudCli, 'run'], {
    env: {
      ...process.env,
      ...s3.collectorEnv,
      NATS_URL: nats.url,
      DATABASE_URL: postgres.url,
      FB_DATA_DIR: join(dir.path, id),
      FB_HTTP_HOST: '127.0.0.1',
      FB_HTTP_PORT: String(port),
      FB_DATASETS_FILE: join(dir.path, 'datasets.yaml'),
      FB_INGEST_FETCH: '8',
      FB_BUILD_POLL_MS: '100',
      FB_BUILD_LEASE_MS: '2000',
      FB_COLLECTOR_ID: id,
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    },
  });
  collectors.set(id, { proc, port });
  await waitFor(
    `collector ${id} to answer /healthz`,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`collector ${id} exited:\n${proc.output()}`);
      const r = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    },
    30_000,
  );
}

beforeAll(async () => {
  [nats, postgres, s3] = await Promise.all([startNatsServer(), startPostgres(), startS3rver()]);
  dir = tempDir();
  writeFileSync(join(dir.path, 'datasets.yaml'), DATASETS);
  db = new pg.Pool({ connectionString: postgres.url });
  db.on('error', () => {}); // idle connections dropped when Postgres stops
  // The first one migrates the database; then both run side by side.
  await startCollector('A');
  await startCollector('B');
});

afterAll(async () => {
  await Promise.all([...collectors.values()].map((c) => c.proc.stop()));
  await db?.end();
  await Promise.all([nats?.close(), postgres?.close(), s3?.close()]);
  dir?.remove();
});

const one = async <T>(sql: string, values: unknown[] = []) => (await db.query(sql, values)).rows[0] as T;

describe('two collectors on one stream and one database', () => {
  it('ingest everything exactly once and never build one window at the same time', async () => {
    const edges = ['gw-a', 'gw-b', 'gw-c'];
    const per = (WINDOWS * PER_WINDOW) / edges.length;
    await Promise.all(
      edges.map((edge, e) =>
        publishObservations(
          nats.url,
          edge,
          Array.from({ length: per }, (_, i) =>
            reading({
              edge,
              station: e * 10 + (i % 10),
              time: T0 + Math.floor((i * WINDOWS * MINUTE) / per),
              value: i,
            }),
          ),
        ),
      ),
    );
    const total = WINDOWS * PER_WINDOW;
    await waitFor(
      'every observation in Postgres',
      async () =>
        (await one<{ n: string }>('SELECT count(*) AS n FROM observations')).n === String(total)
          ? true
          : undefined,
      60_000,
    );
    // Every batch announced and marked (the coordinator has caught up), then every window built.
    await waitFor(
      'every batch marked on its windows',
      async () =>
        (await one<{ n: string }>('SELECT count(DISTINCT batch) AS n FROM window_marks')).n ===
        String(total / 500)
          ? true
          : undefined,
      60_000,
    );
    await waitFor(
      'every window built, with nothing left due, and exported',
      async () => {
        const w = await one<{ n: string; open: string }>(
          `SELECT count(*) AS n, count(*) FILTER (WHERE due_at IS NOT NULL OR lease_owner IS NOT NULL) AS open
           FROM dataset_windows WHERE dataset = 'minutely'`,
        );
        const exported = await one<{ n: string }>(
          `SELECT count(*) AS n FROM (SELECT DISTINCT ON (window_start) window_start, version FROM dataset_versions
             WHERE dataset = 'minutely' ORDER BY window_start, version DESC) v
           JOIN dataset_exports e USING (window_start, version) WHERE e.exporter = 'geoparquet'`,
        );
        return w.n === String(WINDOWS) && w.open === '0' && exported.n === String(WINDOWS) ? true : undefined;
      },
      60_000,
    );

    // Exactly once in effect: every row once, and the two processes' "new rows" add up to the total.
    const ports = [...collectors.values()].map((c) => c.port);
    const inserted = await Promise.all(ports.map((p) => readMetric(p, 'fb_cloud_ingest_inserted_total')));
    expect(inserted.reduce((a, b) => a + b, 0)).toBe(total);
    expect(inserted.every((n) => n > 0)).toBe(true);

    // The latest version of each window holds exactly that window's rows.
    const mismatched = await db.query(
      `SELECT v.window_start, v.rows, (SELECT count(*) FROM observations o WHERE o.variable = 'air_temperature'
                                       AND o.time >= v.window_start AND o.time < v.window_end) AS actual
       FROM (SELECT DISTINCT ON (window_start) * FROM dataset_versions WHERE dataset = 'minutely'
             ORDER BY window_start, version DESC) v
       WHERE v.rows <> (SELECT count(*) FROM observations o WHERE o.variable = 'air_temperature'
                        AND o.time >= v.window_start AND o.time < v.window_end)`,
    );
    expect(mismatched.rows).toEqual([]);

    // No two builds of one window ever overlapped in time, and both processes built windows.
    const builds = (
      await db.query<{ window_start: Date; owner: string; started_at: Date; finished_at: Date }>(
        `SELECT window_start, owner, started_at, finished_at FROM dataset_builds
         WHERE dataset = 'minutely' AND outcome = 'built' ORDER BY window_start, started_at`,
      )
    ).rows;
    for (let i = 1; i < builds.length; i++) {
      const a = builds[i - 1];
      const b = builds[i];
      if (a && b && a.window_start.getTime() === b.window_start.getTime()) {
        expect(b.started_at.getTime()).toBeGreaterThanOrEqual(a.finished_at.getTime());
      }
    }
    expect(new Set(builds.map((b) => b.owner))).toEqual(new Set(['A', 'B']));
    // Every version has exactly one build record and one version number: none was built twice.
    const dupes = await db.query(
      `SELECT window_start, version, count(*) FROM dataset_builds WHERE dataset = 'minutely' AND outcome = 'built'
       GROUP BY 1, 2 HAVING count(*) > 1`,
    );
    expect(dupes.rows).toEqual([]);
  });

  it('leaves no stuck window when a collector is killed in the middle of a build', async () => {
    // One big window written straight into the table, so its build takes long enough to be caught.
    const start = Date.parse('2026-02-02T00:00:00.000Z');
    await db.query('SELECT fb_ensure_observation_partitions($1, $1)', [new Date(start)]);
    await db.query(
      `INSERT INTO observations (id, source, edge, station, variable, value, unit, time, received, lat, lon)
       SELECT md5(g::text) || md5('x' || g::text), 'mqtt', 'gw-big', 'st-' || (g % 50), 'air_temperature', g / 10.0,
              'degC', $1::timestamptz + (g::bigint * 59000 / 600000) * interval '1 ms', now(), 46, 7
       FROM generate_series(1, 600000) g`,
      [new Date(start)],
    );
    const [def] = parseDatasets({
      datasets: [{ name: 'minutely', window: 'PT1M', filter: { variables: ['air_temperature'] } }],
    });
    if (!def) throw new Error('no dataset');
    await new WindowStore(db).requestRebuild(def, start, 'kill-test');

    const victim = await waitFor(
      'a collector to claim the big window',
      async () =>
        (
          await db.query<{ lease_owner: string }>(
            `SELECT lease_owner FROM dataset_windows WHERE dataset = 'minutely' AND window_start = $1
             AND lease_until > now()`,
            [new Date(start)],
          )
        ).rows[0]?.lease_owner,
      30_000,
    );
    await collectors.get(victim)?.proc.kill();
    const survivor = victim === 'A' ? 'B' : 'A';

    // The victim's attempt never finished: it died in the middle.
    const attempt = await one<{ outcome: string | null; finished_at: Date | null }>(
      `SELECT outcome, finished_at FROM dataset_builds WHERE dataset = 'minutely' AND window_start = $1 AND owner = $2
       ORDER BY id DESC LIMIT 1`,
      [new Date(start), victim],
    );
    expect(attempt).toEqual({ outcome: null, finished_at: null });

    // Its lease runs out and the survivor builds the window; nothing stays claimed or due.
    const built = await waitFor(
      'the survivor to build the window',
      async () =>
        (
          await db.query<{ built_by: string; rows: string; version: number }>(
            `SELECT built_by, rows, version FROM dataset_versions WHERE dataset = 'minutely' AND window_start = $1`,
            [new Date(start)],
          )
        ).rows[0],
      60_000,
    );
    expect(built.built_by).toBe(survivor);
    expect(Number(built.rows)).toBe(600_000);
    const w = await one<{ due_at: Date | null; lease_owner: string | null; version: number }>(
      `SELECT due_at, lease_owner, version FROM dataset_windows WHERE dataset = 'minutely' AND window_start = $1`,
      [new Date(start)],
    );
    expect(w).toEqual({ due_at: null, lease_owner: null, version: built.version });
    const survivorPort = collectors.get(survivor)?.port ?? 0;
    expect(await readMetric(survivorPort, 'fb_cloud_dataset_windows', 'state="building"')).toBe(0);
    expect(await readMetric(survivorPort, 'fb_cloud_dataset_windows', 'state="due"')).toBe(0);
  });
});
