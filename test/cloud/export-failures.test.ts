import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  type Collector,
  createCollector,
  createObjectStore,
  loadCloudConfig,
  type ObjectStore,
} from '@fieldbeam/cloud';
import { type DataSetAvailable, streams, subjects } from '@fieldbeam/protocol';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { tableFromArrays, tableToIPC } from 'apache-arrow';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cloudCli,
  type NatsServer,
  readMetric,
  type S3Server,
  startNatsServer,
  startPostgres,
  startS3rver,
  startTcpProxy,
  type TcpProxy,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';
import { publishObservations, reading } from './fixtures.js';

/**
 * Exporter and builder failures against real servers: nats-server, Postgres, and s3rver behind a
 * TCP proxy that can refuse connections (an object store that is down). Versions are announced by
 * the test itself, so each case controls exactly what the exporters find in the store.
 */

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const run = promisify(execFile);
const MAX_DELIVER = 3;
const BUILD_MAX_ATTEMPTS = 2;

let nats: NatsServer;
let postgres: TestPostgres;
let s3: S3Server;
let proxy: TcpProxy;
let dir: TempDir;
let db: pg.Pool;
let nc: NatsConnection;
let store: ObjectStore;
let collector: Collector;
let env: Record<string, string>;

beforeAll(async () => {
  [nats, postgres, s3] = await Promise.all([startNatsServer(), startPostgres(), startS3rver()]);
  proxy = await startTcpProxy(Number(new URL(s3.endpoint).port));
  dir = tempDir();
  writeFileSync(
    join(dir.path, 'datasets.yaml'),
    `datasets:
  - name: temps
    filter: { variables: [air_temperature] }
    window: PT1H
    debounce: PT0.2S
`,
  );
  env = {
    NATS_URL: nats.url,
    DATABASE_URL: postgres.url,
    FB_DATA_DIR: join(dir.path, 'cloud'),
    FB_HTTP_HOST: '127.0.0.1',
    FB_HTTP_PORT: '0',
    FB_DATASETS_FILE: join(dir.path, 'datasets.yaml'),
    FB_COORDINATOR_CONSUMER: 'ds',
    FB_BUILD_POLL_MS: '200',
    FB_BUILD_MAX_ATTEMPTS: String(BUILD_MAX_ATTEMPTS),
    FB_BUILD_RETRY_MS: '300',
    FB_EXPORT_MAX_DELIVER: String(MAX_DELIVER),
    // Long enough that the test restores the store between two tries of the recovery case.
    FB_EXPORT_RETRY_MS: '1500',
    LOG_LEVEL: 'silent',
    ...s3.collectorEnv,
    FB_S3_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
  };
  // The test writes objects straight to s3rver, past the proxy.
  store = createObjectStore(loadCloudConfig({ ...env, FB_S3_ENDPOINT: s3.endpoint }));
  collector = await createCollector(loadCloudConfig(env), log);
  db = new pg.Pool({ connectionString: postgres.url });
  db.on('error', () => {});
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await collector?.close();
  await nc?.close();
  await db?.end();
  await store?.close();
  await proxy?.close();
  await Promise.all([nats?.close(), postgres?.close(), s3?.close()]);
  dir?.remove();
});

let nextVersion = 1;
const WINDOW = '2026-01-10T10:00:00.000Z';

/** An Arrow IPC file like the builder's (with lat/lon), or one an encoder cannot use (without). */
function arrowFile(rows: number, withPosition = true): Uint8Array {
  const value = Float64Array.from({ length: rows }, (_, i) => i);
  const lat = Float64Array.from(value, (v) => 46 + v / 100);
  const lon = Float64Array.from(value, (v) => 7 + v / 100);
  return tableToIPC(tableFromArrays(withPosition ? { value, lat, lon } : { value }), 'file');
}

/** Announces a version as the builder would, optionally putting its object first. */
async function announce(opts: { dataset?: string; object?: Uint8Array; rows?: number }) {
  const dataset = opts.dataset ?? 'temps';
  const version = nextVersion++;
  const key = `datasets/${dataset}/2026-01-10T10:00:00Z/${version}.arrow`;
  if (opts.object) await store.put(key, opts.object);
  const e: DataSetAvailable = {
    v: 1,
    dataset,
    start: WINDOW,
    end: '2026-01-10T11:00:00.000Z',
    version,
    key,
    rows: opts.rows ?? 0,
    sha256: createHash('sha256')
      .update(opts.object ?? new Uint8Array())
      .digest('hex'),
    provisional: false,
  };
  await jetstream(nc).publish(subjects.dataset(dataset), JSON.stringify(e), {
    msgID: `test:${dataset}:${version}`,
  });
  return e;
}

const deadLettersOf = async (version: number) =>
  (
    await db.query<{ source: string; code: string; reason: string; subject: string }>(
      `SELECT source, code, reason, subject FROM dead_letters
       WHERE source LIKE 'exporter:%' AND convert_from(payload, 'UTF8')::jsonb ->> 'version' = $1
       ORDER BY source`,
      [String(version)],
    )
  ).rows;
const exportsOf = async (version: number) =>
  (
    await db.query<{ exporter: string; key: string }>(
      'SELECT exporter, key FROM dataset_exports WHERE version = $1 ORDER BY exporter',
      [version],
    )
  ).rows;
const failures = (labels: string) => readMetric(collector.httpPort, 'fb_cloud_export_failures_total', labels);
const consumer = async (name: string) =>
  (await jetstreamManager(nc)).consumers.info(streams.DATASETS.name, `ds-export-${name}`);

describe('exporter failures', () => {
  it('dead-letters a version whose object is missing once, with its reason, and does not retry it', async () => {
    const e = await announce({ rows: 3 });
    const dead = await waitFor('both exporters to dead-letter the version', async () => {
      const d = await deadLettersOf(e.version);
      return d.length === 2 ? d : undefined;
    });
    expect(dead.map((d) => [d.source, d.code, d.subject])).toEqual([
      ['exporter:api', 'FB_CLOUD_EXPORT_INPUT_MISSING', 'fb.dataset.temps'],
      ['exporter:geoparquet', 'FB_CLOUD_EXPORT_INPUT_MISSING', 'fb.dataset.temps'],
    ]);
    expect(dead[0]?.reason).toContain(`object ${e.key} of temps version ${e.version} is missing`);
    expect(dead[0]?.reason).toContain('fieldbeam-cloud rebuild temps');

    // Terminated, not left for redelivery: a good version announced after it goes through, and by
    // then the missing one has neither been delivered again nor is it waiting for an ack.
    const good = await announce({ object: arrowFile(4), rows: 4 });
    await waitFor('the next version exported', async () =>
      (await exportsOf(good.version)).length === 2 ? true : undefined,
    );
    for (const name of ['geoparquet', 'api']) {
      const info = await consumer(name);
      expect(info.num_ack_pending, name).toBe(0);
      expect(info.num_redelivered, name).toBe(0);
      expect(info.config.max_deliver, name).toBeGreaterThanOrEqual(MAX_DELIVER);
    }
    expect(await deadLettersOf(e.version)).toHaveLength(2);
    expect(
      await failures('exporter="geoparquet",code="FB_CLOUD_EXPORT_INPUT_MISSING",retryable="false"'),
    ).toBe(1);
    expect(
      await readMetric(
        collector.httpPort,
        'fb_cloud_datasets_dead_letters_total',
        'source="exporter:geoparquet",code="FB_CLOUD_EXPORT_INPUT_MISSING"',
      ),
    ).toBe(1);

    // The operator sees them on the command line.
    const listed = await run(process.execPath, [cloudCli, 'dead-letters', '--source', 'exporter'], {
      env: { ...process.env, ...env },
    });
    expect(listed.stdout).toMatch(
      /exporter:geoparquet {2}FB_CLOUD_EXPORT_INPUT_MISSING {2}fb\.dataset\.temps #\d+/,
    );
    expect(listed.stdout).toContain(`object ${e.key} of temps version ${e.version} is missing`);
  });

  it('dead-letters versions of a dataset no longer configured and data the GeoParquet encoder refuses', async () => {
    const gone = await announce({ dataset: 'gone', object: arrowFile(2), rows: 2 });
    const noPosition = await announce({ object: arrowFile(5, false), rows: 5 });
    const [goneDead, encodeDead] = await waitFor('both to be dead-lettered', async () => {
      const a = await deadLettersOf(gone.version);
      const b = await deadLettersOf(noPosition.version);
      return a.length === 2 && b.length === 1 ? [a, b] : undefined;
    });
    expect(goneDead?.map((d) => d.code)).toEqual(['FB_CLOUD_DATASET_UNKNOWN', 'FB_CLOUD_DATASET_UNKNOWN']);
    expect(goneDead?.[0]?.reason).toContain('dataset gone is not in this collector');
    expect(encodeDead?.[0]).toMatchObject({ source: 'exporter:geoparquet', code: 'FB_CLOUD_EXPORT_ENCODE' });
    expect(encodeDead?.[0]?.reason).toContain('no lat/lon columns');
    // The catalog needs no encoding: the same version is exported there.
    await waitFor('the api exporter to take the version', async () =>
      (await exportsOf(noPosition.version)).some((x) => x.exporter === 'api') ? true : undefined,
    );
  });

  it('retries while the object store is down and exports once it is back', async () => {
    await proxy.setMode('refuse');
    let e: DataSetAvailable;
    try {
      e = await announce({ object: arrowFile(6), rows: 6 });
      await waitFor('a failed try', async () =>
        (await failures('exporter="geoparquet",code="FB_CLOUD_OBJECT_STORE",retryable="true"')) >= 1
          ? true
          : undefined,
      );
    } finally {
      await proxy.setMode('pass');
    }
    const done = await waitFor('the version exported after the store came back', async () => {
      const x = await exportsOf(e.version);
      return x.length === 2 ? x : undefined;
    });
    expect(done.find((x) => x.exporter === 'geoparquet')?.key).toBe(
      `datasets/temps/2026-01-10T10:00:00Z/${e.version}.parquet`,
    );
    expect(await store.head(`datasets/temps/2026-01-10T10:00:00Z/${e.version}.parquet`)).toBeDefined();
    expect(await deadLettersOf(e.version)).toEqual([]);
  });

  it(`gives a store failure up after ${MAX_DELIVER} tries and dead-letters it`, async () => {
    const before = await failures('exporter="geoparquet",code="FB_CLOUD_OBJECT_STORE",retryable="true"');
    await proxy.setMode('refuse');
    let e: DataSetAvailable;
    let dead: Awaited<ReturnType<typeof deadLettersOf>>;
    try {
      e = await announce({ object: arrowFile(2), rows: 2 });
      dead = await waitFor('the version given up by both exporters', async () => {
        const d = await deadLettersOf(e.version);
        return d.length === 2 ? d : undefined;
      });
    } finally {
      await proxy.setMode('pass');
    }
    expect(dead.map((d) => d.code)).toEqual(['FB_CLOUD_OBJECT_STORE', 'FB_CLOUD_OBJECT_STORE']);
    expect(dead[1]?.reason).toContain(`(given up after ${MAX_DELIVER} tries)`);
    expect(
      (await failures('exporter="geoparquet",code="FB_CLOUD_OBJECT_STORE",retryable="true"')) - before,
    ).toBe(MAX_DELIVER);
    expect(await exportsOf(e.version)).toEqual([]);
    const info = await consumer('geoparquet');
    expect(info.num_ack_pending).toBe(0);
  });
});

describe('builder failures', () => {
  it('retries a build while the store is down, marks the window failed when it gives up, and builds it on request', async () => {
    const edge = 'gw-build';
    // A past hour, inside the collector's accepted time range.
    const start = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000;
    await proxy.setMode('refuse');
    let window: { state: string; last_error: string | null; due_at: Date | null; attempts: number };
    try {
      await publishObservations(
        nats.url,
        edge,
        Array.from({ length: 10 }, (_, i) =>
          reading({ edge, station: i % 2, time: start + i * 1000, value: i }),
        ),
      );
      window = await waitFor('the build given up', async () => {
        const r = await db.query<{
          state: string;
          last_error: string | null;
          due_at: Date | null;
          attempts: number;
        }>(
          `SELECT last_error, due_at, attempts FROM dataset_windows WHERE dataset = 'temps' AND window_start = $1`,
          [new Date(start)],
        );
        const w = r.rows[0];
        return w?.last_error && w.due_at === null ? w : undefined;
      });
    } finally {
      await proxy.setMode('pass');
    }
    expect(window.attempts).toBe(BUILD_MAX_ATTEMPTS);
    expect(window.last_error).toMatch(
      new RegExp(`^FB_CLOUD_OBJECT_STORE: .*\\(given up after ${BUILD_MAX_ATTEMPTS} tries\\)$`),
    );
    expect(
      await readMetric(
        collector.httpPort,
        'fb_cloud_build_failures_total',
        'dataset="temps",code="FB_CLOUD_OBJECT_STORE",retryable="true"',
      ),
    ).toBe(BUILD_MAX_ATTEMPTS);
    expect(
      await readMetric(collector.httpPort, 'fb_cloud_dataset_windows', 'dataset="temps",state="failed"'),
    ).toBe(1);
    const dead = await db.query<{ reason: string; code: string }>(
      `SELECT reason, code FROM dead_letters WHERE source = 'builder'`,
    );
    expect(dead.rows).toHaveLength(1);
    expect(dead.rows[0]?.code).toBe('FB_CLOUD_OBJECT_STORE');
    expect(dead.rows[0]?.reason).toContain(`window ${new Date(start).toISOString()}`);

    // Visible on the command line, then rebuilt on request now that the store is back.
    const cliEnv = { ...process.env, ...env };
    const listed = await run(process.execPath, [cloudCli, 'datasets', '--dataset', 'temps'], { env: cliEnv });
    expect(listed.stdout).toMatch(/temps\s+\S+\s+failed\s+-\s.*FB_CLOUD_OBJECT_STORE/);
    await run(process.execPath, [cloudCli, 'rebuild', 'temps', new Date(start).toISOString()], {
      env: cliEnv,
    });
    await waitFor('the window built after the rebuild request', async () => {
      const r = await db.query(
        `SELECT 1 FROM dataset_versions WHERE dataset = 'temps' AND window_start = $1`,
        [new Date(start)],
      );
      return (r.rowCount ?? 0) > 0 ? true : undefined;
    });
    const w = await db.query<{ last_error: string | null }>(
      `SELECT last_error FROM dataset_windows WHERE dataset = 'temps' AND window_start = $1`,
      [new Date(start)],
    );
    expect(w.rows[0]?.last_error).toBeNull();
  });
});
