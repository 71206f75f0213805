import { migrate, migrations, ObservationStore } from '@fieldbeam/cloud';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TestPostgres } from '../harness/index.js';
import { reading } from './fixtures.js';

let postgres: TestPostgres;
let pool: pg.Pool;
let store: ObservationStore;

beforeAll(async () => {
  postgres = await startPostgres();
  pool = new pg.Pool({ connectionString: postgres.url, max: 4 });
  pool.on('error', () => {}); // idle connections dropped when Postgres stops
  await migrate(pool);
  store = new ObservationStore(pool);
});
afterAll(async () => {
  await pool?.end();
  await postgres?.close();
});

const count = async () =>
  Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM observations')).rows[0]?.n);
const batch = (seq: number, from: number, n: number, month = 0) => ({
  seq,
  observations: Array.from({ length: n }, (_, i) =>
    reading({
      edge: 'gw-1',
      station: (from + i) % 3,
      time: Date.parse('2026-03-01T00:00:00Z') + month * 31 * 86_400_000 + (from + i) * 1000,
      value: from + i,
      quality: i % 7 === 0 ? ['edge_time', 'odd "quoted", {braced}\\flag\t'] : undefined,
    }),
  ),
});

describe('observation store (idempotent ingest)', () => {
  it('inserts fresh rows by COPY and reports them per batch, creating monthly partitions', async () => {
    const r = await store.commit([batch(1, 0, 300), batch(2, 300, 200, 1)], []);
    expect(r.inserted).toBe(500);
    expect([...r.perBatch]).toEqual([
      [1, 300],
      [2, 200],
    ]);
    expect(await count()).toBe(500);
    const parts = await pool.query<{ relname: string }>(
      `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'observations'::regclass ORDER BY 1`,
    );
    expect(parts.rows.map((p) => p.relname)).toEqual(['observations_p2026_03', 'observations_p2026_04']);
    // Text that needs escaping in COPY and in array literals comes back unchanged.
    const q = await pool.query<{ quality: string[] }>(
      'SELECT quality FROM observations WHERE quality IS NOT NULL LIMIT 1',
    );
    expect(q.rows[0]?.quality).toEqual(['edge_time', 'odd "quoted", {braced}\\flag\t']);
  });

  it('treats a full replay as a no-op', async () => {
    const r = await store.commit([batch(1, 0, 300), batch(2, 300, 200, 1)], []);
    expect(r.inserted).toBe(0);
    expect(r.perBatch.size).toBe(0);
    expect(await count()).toBe(500);
  });

  it('attributes new rows to their batches when a round mixes replays and new data', async () => {
    const r = await store.commit([batch(3, 250, 100), batch(4, 1000, 40), batch(5, 0, 10)], []);
    expect(r.inserted).toBe(50 + 40);
    expect(r.perBatch.get(3)).toBe(50);
    expect(r.perBatch.get(4)).toBe(40);
    expect(r.perBatch.get(5)).toBeUndefined();
    expect(await count()).toBe(590);
  });

  it('writes an id repeated inside one round once, and keeps dead letters with the rows', async () => {
    const r = await store.commit(
      [batch(6, 2000, 10), batch(7, 2000, 10)],
      [{ subject: 'fb.obs.x', streamSeq: 8, reason: 'test', payload: new Uint8Array([1, 2]) }],
    );
    expect(r.inserted).toBe(10);
    expect(r.perBatch.get(6)).toBe(10);
    expect(await count()).toBe(600);
    const dl = await pool.query('SELECT reason FROM dead_letters WHERE stream_seq = 8');
    expect(dl.rows).toEqual([{ reason: 'test' }]);
  });

  it('stays consistent when two stores commit overlapping rounds at once', async () => {
    const other = new ObservationStore(pool);
    const rounds = Array.from({ length: 6 }, (_, k) => [batch(100 + k, 5000 + k * 100, 150)]);
    const results = await Promise.all(rounds.flatMap((b) => [store.commit(b, []), other.commit(b, [])]));
    // Rounds overlap by 50 readings: 650 distinct, each counted as new exactly once.
    expect(results.reduce((s, r) => s + r.inserted, 0)).toBe(650);
    expect(await count()).toBe(600 + 650);
  });
});

describe('migration 2 (observations partitioned by month)', () => {
  it('carries the rows of an existing unpartitioned table over', async () => {
    const url = await postgres.createDatabase('fb_migration_test');
    const old = new pg.Pool({ connectionString: url, max: 2 });
    old.on('error', () => {});
    try {
      // A database as the walking skeleton left it: migration 1 only, with data in it.
      const m1 = migrations.find((m) => m.version === 1);
      await old.query(m1?.sql ?? '');
      await old.query(`CREATE TABLE schema_migrations (
        version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      await old.query(
        "INSERT INTO schema_migrations (version, name) VALUES (1, 'observations and dead letters')",
      );
      const rows = [...batch(1, 0, 5).observations, ...batch(2, 0, 5, 2).observations];
      for (const o of rows) {
        await old.query(
          `INSERT INTO observations (id, source, edge, station, variable, value, unit, time, received, lat, lon, quality)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
          [
            o.id,
            o.source,
            o.edge,
            o.station,
            o.variable,
            o.value,
            o.unit,
            o.time,
            o.received,
            o.lat,
            o.lon,
            o.quality ?? null,
          ],
        );
      }
      expect(await migrate(old)).toEqual(migrations.filter((m) => m.version > 1).map((m) => m.version));
      const r = await old.query<{ n: string; parts: string }>(
        `SELECT (SELECT count(*) FROM observations) AS n,
                (SELECT count(*) FROM pg_inherits WHERE inhparent = 'observations'::regclass) AS parts`,
      );
      expect(r.rows[0]).toEqual({ n: '10', parts: '2' });
      // And ingest goes on idempotently on top of the carried-over rows.
      const store2 = new ObservationStore(old);
      expect((await store2.commit([{ seq: 9, observations: rows }], [])).inserted).toBe(0);
    } finally {
      await old.end();
    }
  });
});
