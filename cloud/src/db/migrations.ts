import type pg from 'pg';

/**
 * Versioned schema changes, applied in order, each once, each in its own transaction.
 * Never edit a released migration: add a new one.
 */
export const migrations: readonly { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'observations and dead letters',
    sql: `
      CREATE TABLE observations (
        id        text PRIMARY KEY,
        source    text NOT NULL,
        edge      text NOT NULL,
        station   text NOT NULL,
        sensor    text,
        variable  text NOT NULL,
        value     double precision,
        text      text,
        unit      text NOT NULL,
        time      timestamptz NOT NULL,
        received  timestamptz NOT NULL,
        ingested  timestamptz NOT NULL DEFAULT now(),
        lat       double precision,
        lon       double precision,
        alt       double precision,
        quality   text[]
      );
      CREATE INDEX observations_time_idx ON observations (time);
      CREATE INDEX observations_station_time_idx ON observations (station, time);

      -- Messages ingest could not use, with the reason, for an operator to inspect.
      CREATE TABLE dead_letters (
        id          bigserial PRIMARY KEY,
        at          timestamptz NOT NULL DEFAULT now(),
        subject     text NOT NULL,
        stream_seq  bigint,
        reason      text NOT NULL,
        payload     bytea
      );
    `,
  },
];

/** Applies pending migrations. Safe when several collectors start at once (advisory lock). */
export async function migrate(pool: pg.Pool): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock(727001)');
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const done = new Set(
      (await client.query<{ version: number }>('SELECT version FROM schema_migrations')).rows.map(
        (r) => r.version,
      ),
    );
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
          m.version,
          m.name,
        ]);
        await client.query('COMMIT');
        applied.push(m.version);
      } catch (err) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${m.version} (${m.name}) failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock(727001)').catch(() => {});
    client.release();
  }
  return applied;
}
