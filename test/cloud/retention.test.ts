import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Collector, createCollector, loadCloudConfig, migrate } from '@fieldbeam/cloud';
import { streams } from '@fieldbeam/protocol';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos } from '@nats-io/transport-node';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudMetrics } from '../../cloud/src/metrics.js';
import { pruneOnce, startPruner } from '../../cloud/src/retention/pruner.js';
import { retentionOf } from '../../cloud/src/retention/retention-settings.js';
import { createObjectStore } from '../../cloud/src/storage/create-object-store.js';
import type { ObjectStore } from '../../cloud/src/storage/object-store.js';
import {
  cloudCli,
  type NatsServer,
  type S3Server,
  startNatsServer,
  startPostgres,
  startS3rver,
  type TempDir,
  type TestPostgres,
  tempDir,
} from '../harness/index.js';

const run = promisify(execFile);
const MiB = 1024 ** 2;
const DAY = 86_400_000;

let nats: NatsServer;
let postgres: TestPostgres;
let s3: S3Server;
let dir: TempDir;

beforeAll(async () => {
  dir = tempDir();
  [nats, postgres, s3] = await Promise.all([startNatsServer(), startPostgres(), startS3rver()]);
});

afterAll(async () => {
  await Promise.all([nats?.close(), postgres?.close(), s3?.close()]);
  dir?.remove();
});

describe('stream limits', () => {
  /** Starts a collector with `env`, returns what it logged about streams, and stops it. */
  async function startAndStop(env: Record<string, string>): Promise<Record<string, unknown>[]> {
    const lines: Record<string, unknown>[] = [];
    const log = pino(
      { level: 'info' },
      { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const collector: Collector = await createCollector(
      loadCloudConfig({
        NATS_URL: nats.url,
        DATABASE_URL: postgres.url,
        FB_DATA_DIR: join(dir.path, 'collector'),
        FB_HTTP_HOST: '127.0.0.1',
        FB_HTTP_PORT: '0',
        ...env,
      }),
      log,
    );
    await collector.close();
    return lines.filter((l) => typeof l.stream === 'string');
  }

  async function limits(): Promise<Record<string, { bytes: number; age: number }>> {
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      const out: Record<string, { bytes: number; age: number }> = {};
      for (const s of Object.values(streams)) {
        const { config } = await jsm.streams.info(s.name);
        out[s.name] = { bytes: config.max_bytes, age: config.max_age };
      }
      return out;
    } finally {
      await nc.close();
    }
  }

  it('applies changed limits to the existing streams at restart and logs what changed', async () => {
    const first = await startAndStop({});
    expect(first.map((l) => [l.stream, l.created])).toEqual(
      Object.values(streams).map((s) => [s.name, true]),
    );
    expect(await limits()).toEqual(
      Object.fromEntries(
        Object.values(streams).map((s) => [s.name, { bytes: s.maxBytes, age: nanos(s.maxAgeMs) }]),
      ),
    );

    const changed = await startAndStop({
      FB_OBS_MAX_BYTES: String(512 * MiB),
      FB_OBS_MAX_AGE: 'P2D',
      FB_EVENTS_MAX_BYTES: String(64 * MiB),
      FB_EVENTS_MAX_AGE: 'PT12H',
      FB_DATASETS_MAX_BYTES: String(32 * MiB),
      FB_DATASETS_MAX_AGE: 'P10D',
      FB_STATUS_MAX_BYTES: String(16 * MiB),
      FB_STATUS_MAX_AGE: 'P3D',
    });
    expect(await limits()).toEqual({
      FB_OBS: { bytes: 512 * MiB, age: nanos(2 * DAY) },
      FB_EVENTS: { bytes: 64 * MiB, age: nanos(DAY / 2) },
      FB_DATASETS: { bytes: 32 * MiB, age: nanos(10 * DAY) },
      FB_STATUS: { bytes: 16 * MiB, age: nanos(3 * DAY) },
    });
    const obs = changed.find((l) => l.stream === 'FB_OBS');
    expect(obs?.msg).toBe('stream limits changed to the settings');
    expect(obs?.changed).toEqual({
      max_bytes: { from: streams.OBS.maxBytes, to: 512 * MiB },
      max_age: { from: nanos(streams.OBS.maxAgeMs), to: nanos(2 * DAY) },
    });
    expect(changed.map((l) => l.stream).sort()).toEqual(['FB_DATASETS', 'FB_EVENTS', 'FB_OBS', 'FB_STATUS']);

    // Back to the defaults for a single one; the rest as they were: only that one is touched.
    const again = await startAndStop({
      FB_OBS_MAX_AGE: 'P2D',
      FB_EVENTS_MAX_BYTES: String(64 * MiB),
      FB_EVENTS_MAX_AGE: 'PT12H',
      FB_DATASETS_MAX_BYTES: String(32 * MiB),
      FB_DATASETS_MAX_AGE: 'P10D',
      FB_STATUS_MAX_BYTES: String(16 * MiB),
      FB_STATUS_MAX_AGE: 'P3D',
    });
    expect(again.map((l) => [l.stream, l.changed])).toEqual([
      ['FB_OBS', { max_bytes: { from: 512 * MiB, to: streams.OBS.maxBytes } }],
    ]);
    expect((await limits()).FB_OBS).toEqual({ bytes: streams.OBS.maxBytes, age: nanos(2 * DAY) });
  }, 120_000);

  it('refuses window marks kept no longer than events can be redelivered, a zero retention, rounds under a minute', () => {
    expect(() => loadCloudConfig({ FB_RETAIN_WINDOW_MARKS: 'PT12H' })).toThrow(/FB_RETAIN_WINDOW_MARKS/);
    expect(() =>
      loadCloudConfig({ FB_RETAIN_WINDOW_MARKS: 'PT12H', FB_EVENTS_MAX_AGE: 'PT6H' }),
    ).not.toThrow();
    expect(() => loadCloudConfig({ FB_RETAIN_DEAD_LETTERS: 'P0D' })).toThrow(/FB_RETAIN_DEAD_LETTERS/);
    expect(() => loadCloudConfig({ FB_RETENTION_EVERY: 'PT1S' })).toThrow(
      /FB_RETENTION_EVERY: at least PT1M/,
    );
  });
});

describe('pruning the bookkeeping tables', () => {
  let db: pg.Pool;
  const retention = retentionOf(loadCloudConfig({}));

  beforeAll(async () => {
    db = new pg.Pool({ connectionString: await postgres.createDatabase('prune_rows') });
    // Idle connections end when Postgres stops at the end: not an error of the test.
    db.on('error', () => {});
    await migrate(db);
  });
  afterAll(async () => {
    await db?.end();
  });

  /** An ingest_batches row (the message a trace and a window's audit reach) ingested `daysAgo`. */
  const insertBatch = (streamSeq: number, daysAgo: number) =>
    db.query(
      `INSERT INTO ingest_batches (stream_seq, edge, buffer_id, seq_first, seq_last, observations, inserted,
                                   round, ingested, time_min, time_max, traces)
       VALUES ($1, 'e', 'b', 1, 1, 1, 1, 1, now() - $2 * interval '1 day', now(), now(), '{}')`,
      [streamSeq, daysAgo],
    );

  /** Old rows: past every default retention; new rows: within every one. */
  async function seed(): Promise<void> {
    await db.query('TRUNCATE dead_letters, dataset_builds, window_marks, ingest_batches');
    for (let i = 0; i < 5; i++) {
      await db.query(
        `INSERT INTO dead_letters (subject, reason, at) VALUES ('fb.obs.e', 'old', now() - interval '31 days')`,
      );
      await db.query(
        `INSERT INTO dataset_builds (dataset, window_start, version, owner, started_at, finished_at, outcome)
         VALUES ('d', '2026-01-01', $1, 'c', now() - interval '40 days', now() - interval '40 days', 'built')`,
        [i],
      );
      await db.query(
        `INSERT INTO window_marks (dataset, window_start, batch, edge, inserted, at)
         VALUES ('d', '2026-01-01', $1, 'e', 0, now() - interval '91 days')`,
        [`old-${i}`],
      );
      await insertBatch(i, 91);
    }
    // A build whose process died long ago (never finished) and one running now.
    await db.query(
      `INSERT INTO dataset_builds (dataset, window_start, version, owner, started_at)
       VALUES ('d', '2026-01-01', 10, 'dead', now() - interval '31 days'), ('d', '2026-01-02', 1, 'live', now())`,
    );
    for (let i = 0; i < 3; i++) {
      await db.query(
        `INSERT INTO dead_letters (subject, reason, at) VALUES ('fb.obs.e', 'new', now() - interval '29 days')`,
      );
      await db.query(
        `INSERT INTO dataset_builds (dataset, window_start, version, owner, started_at, finished_at, outcome)
         VALUES ('d', '2026-02-01', $1, 'c', now() - interval '29 days', now() - interval '29 days', 'built')`,
        [i],
      );
      await db.query(
        `INSERT INTO window_marks (dataset, window_start, batch, edge, inserted, at)
         VALUES ('d', '2026-02-01', $1, 'e', 0, now() - interval '89 days')`,
        [`new-${i}`],
      );
      await insertBatch(100 + i, 89);
    }
  }

  const left = async () => ({
    dead_letters: (await db.query('SELECT reason FROM dead_letters')).rows.map((r) => r.reason).sort(),
    dataset_builds: (await db.query('SELECT owner, version FROM dataset_builds ORDER BY owner, version'))
      .rows,
    window_marks: (await db.query('SELECT batch FROM window_marks ORDER BY batch')).rows.map((r) => r.batch),
    ingest_batches: (await db.query('SELECT stream_seq FROM ingest_batches ORDER BY stream_seq')).rows.map(
      (r) => Number(r.stream_seq),
    ),
  });

  it('deletes rows past their retention and keeps the newer ones, a bounded batch at a time', async () => {
    await seed();
    // Two rows per statement, one statement per table and round: the backlog takes three rounds.
    const rounds = [];
    for (let i = 0; i < 4; i++) rounds.push(await pruneOnce(db, retention, { batchRows: 2, maxBatches: 1 }));
    expect(rounds.map((r) => r.pruned)).toEqual([
      { window_marks: 2, ingest_batches: 2, dataset_builds: 2, dead_letters: 2 },
      { window_marks: 2, ingest_batches: 2, dataset_builds: 2, dead_letters: 2 },
      { window_marks: 1, ingest_batches: 1, dataset_builds: 2, dead_letters: 1 },
      { window_marks: 0, ingest_batches: 0, dataset_builds: 0, dead_letters: 0 },
    ]);
    expect(await left()).toEqual({
      dead_letters: ['new', 'new', 'new'],
      dataset_builds: [
        { owner: 'c', version: 0 },
        { owner: 'c', version: 1 },
        { owner: 'c', version: 2 },
        { owner: 'live', version: 1 },
      ],
      window_marks: ['new-0', 'new-1', 'new-2'],
      ingest_batches: [100, 101, 102],
    });
  });

  it('honours a retention set shorter, and counts what it pruned', async () => {
    await seed();
    const metrics = createCloudMetrics();
    const pruner = startPruner(
      { pool: db, log: pino({ level: 'silent' }), metrics },
      { ...retention, deadLettersMs: 28 * DAY },
      { firstDelayMs: 3_600_000 },
    );
    try {
      const r = await pruner.runNow();
      expect(r?.pruned).toEqual({ window_marks: 5, ingest_batches: 5, dataset_builds: 6, dead_letters: 8 });
    } finally {
      await pruner.close();
    }
    const counted = (await metrics.retentionPruned.get()).values.map((v) => [v.labels.table, v.value]);
    expect(Object.fromEntries(counted)).toEqual({
      window_marks: 5,
      ingest_batches: 5,
      dataset_builds: 6,
      dead_letters: 8,
    });
    expect((await metrics.retentionRounds.get()).values).toEqual([
      expect.objectContaining({ labels: { outcome: 'pruned' }, value: 1 }),
    ]);
    expect((await left()).dead_letters).toEqual([]);
  });

  it('skips the round while another collector prunes (advisory lock)', async () => {
    await seed();
    const other = await db.connect();
    try {
      await other.query('SELECT pg_advisory_lock(727010)');
      const r = await pruneOnce(db, retention);
      expect(r.skipped).toBe(true);
      expect((await left()).dead_letters).toHaveLength(8);
    } finally {
      await other.query('SELECT pg_advisory_unlock(727010)');
      other.release();
    }
    expect((await pruneOnce(db, retention)).skipped).toBe(false);
    expect((await left()).dead_letters).toHaveLength(3);
  });
});

describe('datasets prune', () => {
  let db: pg.Pool;
  let env: Record<string, string>;
  let store: ObjectStore;
  const W1 = '2026-12-01T00:00:00Z';
  const W2 = '2026-12-01T01:00:00Z';
  const W3 = '2026-12-01T02:00:00Z';
  const key = (w: string, v: number) => `datasets/temps/${w}/v${v}.arrow`;
  const exportKey = (w: string, v: number) => `exports/geoparquet/temps/${w}/v${v}.parquet`;

  beforeAll(async () => {
    const url = await postgres.createDatabase('prune_versions');
    db = new pg.Pool({ connectionString: url });
    // Idle connections end when Postgres stops at the end: not an error of the test.
    db.on('error', () => {});
    await migrate(db);
    env = { DATABASE_URL: url, FB_DATA_DIR: join(dir.path, 'cli'), ...s3.collectorEnv };
    store = createObjectStore(loadCloudConfig(env));
    // W1: versions 1-4, the newest current. W2: 1-3, but 2 is current (3 was built, then the window
    // pointed back; the current one is kept whatever its rank). W3: 1-2, 1 not yet announced.
    const windows: [string, number, number, number[]][] = [
      [W1, 4, 4, []],
      [W2, 3, 2, []],
      [W3, 2, 2, [1]],
    ];
    for (const [w, versions, current, unannounced] of windows) {
      await db.query(
        `INSERT INTO dataset_windows (dataset, window_start, window_end, version, next_version)
         VALUES ('temps', $1, $1::timestamptz + interval '1 hour', $2, $3)`,
        [w, current, versions + 1],
      );
      for (let v = 1; v <= versions; v++) {
        await db.query(
          `INSERT INTO dataset_versions (dataset, window_start, window_end, version, key, rows, bytes, sha256,
             generation, provisional, built_by, build_ms, announced)
           VALUES ('temps', $1, $1::timestamptz + interval '1 hour', $2::int, $3, 10, 1000, 'x', $2::int, false, 'c', 5, $4)`,
          [w, v, key(w, v), !unannounced.includes(v)],
        );
        await db.query(
          `INSERT INTO dataset_exports (exporter, dataset, window_start, version, key, rows, bytes)
           VALUES ('geoparquet', 'temps', $1, $2, $3, 10, 800), ('api', 'temps', $1, $2, NULL, 10, 0)`,
          [w, v, exportKey(w, v)],
        );
        await store.put(key(w, v), new Uint8Array([v]));
        await store.put(exportKey(w, v), new Uint8Array([v]));
      }
    }
  });
  afterAll(async () => {
    await store?.close();
    await db?.end();
  });

  const prune = (...args: string[]) =>
    run(process.execPath, [cloudCli, 'datasets', 'prune', ...args], {
      env: { PATH: process.env.PATH, LOG_LEVEL: 'silent', ...env },
    });

  /** Per window, the versions with a row, and those whose object (and export) is in the store. */
  async function state(): Promise<Record<string, { rows: number[]; objects: number[] }>> {
    const out: Record<string, { rows: number[]; objects: number[] }> = {};
    for (const w of [W1, W2, W3]) {
      const rows = (
        await db.query<{ version: number }>(
          `SELECT version FROM dataset_versions WHERE window_start = $1 ORDER BY version`,
          [w],
        )
      ).rows.map((r) => r.version);
      const objects: number[] = [];
      for (let v = 1; v <= 4; v++) {
        const [a, b] = await Promise.all([store.head(key(w, v)), store.head(exportKey(w, v))]);
        expect(Boolean(a)).toBe(Boolean(b));
        if (a) objects.push(v);
      }
      out[w] = { rows, objects };
    }
    return out;
  }

  it('--dry-run lists what would go and deletes nothing', async () => {
    const { stdout } = await prune('--keep', '1', '--dry-run');
    expect(stdout).toContain(
      '4 version(s) beyond the newest 1 of their window (dry run: nothing is deleted)',
    );
    expect(stdout).toContain(`[3/4] would delete temps ${W1} version 3 (2 object(s))`);
    expect(stdout).toContain(`[4/4] would delete temps ${W2} version 1 (2 object(s))`);
    expect(stdout).toContain('would delete 4 version(s), 8 object(s)');
    expect(await state()).toEqual({
      [W1]: { rows: [1, 2, 3, 4], objects: [1, 2, 3, 4] },
      [W2]: { rows: [1, 2, 3], objects: [1, 2, 3] },
      [W3]: { rows: [1, 2], objects: [1, 2] },
    });
  });

  it('--dataset limits it to one dataset', async () => {
    // Before anything is deleted: without the filter, 4 versions would go (see above).
    const other = await prune('--keep', '1', '--dataset', 'other', '--dry-run');
    expect(other.stdout).toContain('0 version(s) beyond the newest 1');
    const temps = await prune('--keep', '1', '--dataset', 'temps', '--dry-run');
    expect(temps.stdout).toContain('4 version(s) beyond the newest 1');
  });

  it('keeps the newest --keep versions, the current one and unannounced ones; deletes the rest', async () => {
    const kept2 = await prune('--keep', '2');
    expect(kept2.stdout).toContain('deleted 3 version(s), 6 object(s)');
    expect(await state()).toEqual({
      [W1]: { rows: [3, 4], objects: [3, 4] },
      [W2]: { rows: [2, 3], objects: [2, 3] },
      [W3]: { rows: [1, 2], objects: [1, 2] },
    });
    const kept1 = await prune('--keep', '1');
    expect(kept1.stdout).toContain(`[1/1] deleted temps ${W1} version 3 (2 object(s))`);
    expect(await state()).toEqual({
      [W1]: { rows: [4], objects: [4] },
      [W2]: { rows: [2, 3], objects: [2, 3] },
      [W3]: { rows: [1, 2], objects: [1, 2] },
    });
    const exports = await db.query('SELECT DISTINCT version FROM dataset_exports WHERE window_start = $1', [
      W1,
    ]);
    expect(exports.rows).toEqual([{ version: 4 }]);
  });

  it('refuses --keep 0', async () => {
    await expect(prune('--keep', '0')).rejects.toThrow(/--keep/);
  });
});
