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
  {
    version: 2,
    name: 'observations partitioned by month',
    // Postgres requires every unique index of a partitioned table to contain the partition key, so the
    // key is (time, id) instead of (id). That is still "unique on id": the id is a hash over the
    // reading *including its time*, so two rows with one id have one time and meet in one partition,
    // where the (time, id) key rejects the second. Leading with time keeps index inserts near the
    // right edge of the b-tree (readings arrive roughly in time order), doubles as the time index, and
    // gives the builder and the read API their (time, id) order for free. `COLLATE "C"` compares ids
    // bytewise, which is all a hex hash needs. The old (station, time) index is not carried over: it
    // halved ingest throughput, and every reader here (builder, read API) goes by time first.
    sql: `
      ALTER TABLE observations RENAME TO observations_v1;
      ALTER TABLE observations_v1 RENAME CONSTRAINT observations_pkey TO observations_v1_pkey;
      ALTER INDEX observations_time_idx RENAME TO observations_v1_time_idx;
      ALTER INDEX observations_station_time_idx RENAME TO observations_v1_station_time_idx;

      CREATE TABLE observations (
        id        text COLLATE "C" NOT NULL,
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
        quality   text[],
        PRIMARY KEY (time, id)
      ) PARTITION BY RANGE (time);

      -- One partition per UTC month, created on demand by ingest (and here for existing rows).
      -- Serialised by an advisory lock so two collectors never race on the catalog.
      CREATE FUNCTION fb_ensure_observation_partitions(lo timestamptz, hi timestamptz) RETURNS int
      LANGUAGE plpgsql AS $$
      DECLARE
        m timestamp := date_trunc('month', lo AT TIME ZONE 'UTC');
        last timestamp := date_trunc('month', hi AT TIME ZONE 'UTC');
        created int := 0;
        part text;
      BEGIN
        PERFORM pg_advisory_xact_lock(727002);
        WHILE m <= last LOOP
          part := 'observations_p' || to_char(m, 'YYYY_MM');
          IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF observations FOR VALUES FROM (%L) TO (%L)',
                           part, (m AT TIME ZONE 'UTC'), ((m + interval '1 month') AT TIME ZONE 'UTC'));
            created := created + 1;
          END IF;
          m := m + interval '1 month';
        END LOOP;
        RETURN created;
      END $$;

      DO $$
      DECLARE r record;
      BEGIN
        FOR r IN SELECT DISTINCT date_trunc('month', time AT TIME ZONE 'UTC') AS m FROM observations_v1 LOOP
          PERFORM fb_ensure_observation_partitions(r.m AT TIME ZONE 'UTC', r.m AT TIME ZONE 'UTC');
        END LOOP;
      END $$;
      INSERT INTO observations
        (id, source, edge, station, sensor, variable, value, text, unit, time, received, ingested, lat, lon, alt, quality)
      SELECT id, source, edge, station, sensor, variable, value, text, unit, time, received, ingested, lat, lon, alt, quality
      FROM observations_v1;
      DROP TABLE observations_v1;
    `,
  },
  {
    version: 3,
    name: 'dataset windows, versions, audit, builds and exports',
    sql: `
      -- One row per (dataset, window) that ever received data. "generation" counts the ingest batches
      -- that touched it; a build records the generation it saw, so data arriving during a build leaves
      -- generation > built_generation and the window due again. due_at is the timer: NULL = nothing to do.
      CREATE TABLE dataset_windows (
        dataset            text NOT NULL,
        window_start       timestamptz NOT NULL,
        window_end         timestamptz NOT NULL,
        generation         bigint NOT NULL DEFAULT 0,
        built_generation   bigint NOT NULL DEFAULT 0,
        final              boolean NOT NULL DEFAULT false,
        due_at             timestamptz,
        first_data_at      timestamptz NOT NULL DEFAULT now(),
        last_data_at       timestamptz NOT NULL DEFAULT now(),
        lease_owner        text,
        lease_until        timestamptz,
        claimed_generation bigint,
        next_version       int NOT NULL DEFAULT 0,
        version            int,
        attempts           int NOT NULL DEFAULT 0,
        last_error         text,
        updated_at         timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (dataset, window_start)
      );
      CREATE INDEX dataset_windows_due_idx ON dataset_windows (due_at) WHERE due_at IS NOT NULL;

      -- Every recorded build of a window: the object it wrote and what it contains.
      CREATE TABLE dataset_versions (
        dataset      text NOT NULL,
        window_start timestamptz NOT NULL,
        window_end   timestamptz NOT NULL,
        version      int NOT NULL,
        key          text NOT NULL,
        rows         bigint NOT NULL,
        bytes        bigint NOT NULL,
        sha256       text NOT NULL,
        generation   bigint NOT NULL,
        provisional  boolean NOT NULL,
        built_by     text NOT NULL,
        built_at     timestamptz NOT NULL DEFAULT now(),
        build_ms     int NOT NULL,
        -- Set once DataSetAvailable is acknowledged by the stream; builders re-announce the rest.
        announced    boolean NOT NULL DEFAULT false,
        PRIMARY KEY (dataset, window_start, version)
      );
      CREATE INDEX dataset_versions_unannounced_idx ON dataset_versions (built_at) WHERE NOT announced;

      -- Audit trail: which ingest batch (FB_OBS:<stream seq>) touched which window. Its key also makes
      -- marking idempotent: a redelivered DataAvailable does not bump the generation again.
      CREATE TABLE window_marks (
        dataset      text NOT NULL,
        window_start timestamptz NOT NULL,
        batch        text NOT NULL,
        edge         text NOT NULL,
        inserted     int NOT NULL,
        at           timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (dataset, window_start, batch)
      );
      CREATE INDEX window_marks_batch_idx ON window_marks (batch);

      -- Every build attempt, finished or not (outcome NULL: running, or its process died).
      CREATE TABLE dataset_builds (
        id           bigserial PRIMARY KEY,
        dataset      text NOT NULL,
        window_start timestamptz NOT NULL,
        version      int NOT NULL,
        owner        text NOT NULL,
        started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
        finished_at  timestamptz,
        outcome      text,
        error        text
      );
      CREATE INDEX dataset_builds_window_idx ON dataset_builds (dataset, window_start);

      -- What each exporter has done, keyed so a redelivered DataSetAvailable is a no-op.
      CREATE TABLE dataset_exports (
        exporter     text NOT NULL,
        dataset      text NOT NULL,
        window_start timestamptz NOT NULL,
        version      int NOT NULL,
        key          text,
        rows         bigint,
        bytes        bigint,
        at           timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (exporter, dataset, window_start, version)
      );
    `,
  },
  {
    version: 4,
    name: 'observations keyed per edge',
    // The id is a hash of the reading, not of who sent it, so under a (time, id) key an edge could send
    // the id of another edge's coming reading first and have the genuine one dropped by ON CONFLICT.
    // Keyed (time, id, edge), each edge's rows are its own namespace: a replay from the same edge is
    // still a conflict, a row from another edge never is. The (time, id) prefix keeps the order the
    // builder and the read API use. On a partitioned table both statements recurse to every partition.
    sql: `
      ALTER TABLE observations DROP CONSTRAINT observations_pkey;
      ALTER TABLE observations ADD PRIMARY KEY (time, id, edge);
    `,
  },
  {
    version: 5,
    name: 'dead letters say which part of the collector set them aside, and its error code',
    // Ingest was the only writer until the builder and exporters dead-lettered too; older rows came
    // from ingest or the coordinator, told apart by their subject.
    sql: `
      ALTER TABLE dead_letters ADD COLUMN source text NOT NULL DEFAULT 'ingest';
      ALTER TABLE dead_letters ADD COLUMN code text;
      UPDATE dead_letters SET source = 'coordinator' WHERE subject LIKE 'fb.events.%';
      CREATE INDEX dead_letters_source_idx ON dead_letters (source, id);
    `,
  },
  {
    version: 6,
    name: 'fleet registry: the latest heartbeat of every edge',
    // One row per edge, replaced by each newer heartbeat (last_seen is the stream's time of it, so a
    // redelivered older one never overwrites a newer one). The columns are what the fleet view, the
    // metrics and the offline rule query; the whole heartbeat is kept as sent in status.
    sql: `
      CREATE TABLE fleet_edges (
        edge                text PRIMARY KEY,
        first_seen          timestamptz NOT NULL,
        last_seen           timestamptz NOT NULL,
        stream_seq          bigint NOT NULL,
        interval_ms         int,
        version             text NOT NULL,
        uplink              text NOT NULL,
        buffer_depth        bigint NOT NULL,
        buffer_bytes        bigint NOT NULL,
        buffer_capacity     bigint NOT NULL,
        oldest_unsent_age_s double precision,
        dropped             bigint NOT NULL,
        rejected            bigint NOT NULL,
        clock               text NOT NULL,
        disk_free_bytes     double precision,
        sensor_count        int,
        config_revision     bigint,
        status              jsonb NOT NULL
      );
    `,
  },
  {
    version: 7,
    name: 'completeness: the sequence ranges each edge buffer sent, received or dropped',
    // Ingest appends one row per buffer and kind per round, in the round's transaction (no row is
    // updated there, so rounds of one edge never wait on each other); a compaction after the commit
    // merges a buffer's new rows with the ranges they touch (merged = true). Batches of agents that do
    // not name their buffer are kept under buffer_id '' (their sequence spaces cannot be told apart).
    sql: `
      CREATE TABLE edge_buffers (
        edge       text NOT NULL,
        buffer_id  text NOT NULL,
        start      bigint NOT NULL,
        first_seen timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (edge, buffer_id)
      );
      CREATE TABLE edge_seq_ranges (
        edge      text NOT NULL,
        buffer_id text NOT NULL,
        kind      text NOT NULL CHECK (kind IN ('received', 'dropped')),
        first     bigint NOT NULL,
        last      bigint NOT NULL,
        merged    boolean NOT NULL DEFAULT false
      );
      CREATE INDEX edge_seq_ranges_last_idx ON edge_seq_ranges (edge, buffer_id, last);
      CREATE INDEX edge_seq_ranges_new_idx ON edge_seq_ranges (edge, buffer_id, first) WHERE NOT merged;
    `,
  },
  {
    version: 8,
    name: 'dataset windows: dirty since',
    // When the first data since the last build was claimed arrived: a dataset's max_delay counts from
    // here, so a window that keeps receiving data is built anyway (the debounce alone moves on).
    sql: `
      ALTER TABLE dataset_windows ADD COLUMN dirty_since timestamptz;
      UPDATE dataset_windows SET dirty_since = last_data_at WHERE generation > built_generation;
    `,
  },
  {
    version: 9,
    name: 'trace ids: on observations, and the ingest batch that carried each trace',
    // observations.trace_id: the W3C trace-id of the message that brought the reading (NULL from edges
    // without trace ids); a nullable column without a default is added without rewriting a partition.
    // It has no index (one per reading would slow ingest): a trace is found through ingest_batches,
    // one row per stored stream message, whose traces (the distinct trace-ids of its readings) are
    // indexed, and whose edge, ingest time and time range then find the rows in observations by key.
    // round is the id of the ingest transaction that committed the batch (every batch of one round
    // shares it), ingested its start, which is also the rows' observations.ingested. Window marks name
    // the batch (batch = 'FB_OBS:' || stream_seq), so a window's audit trail reaches its traces and
    // rounds through this table.
    sql: `
      ALTER TABLE observations ADD COLUMN trace_id text;
      CREATE TABLE ingest_batches (
        stream_seq   bigint PRIMARY KEY,
        edge         text NOT NULL,
        buffer_id    text NOT NULL,
        seq_first    bigint NOT NULL,
        seq_last     bigint NOT NULL,
        observations int NOT NULL,
        inserted     int NOT NULL,
        round        bigint NOT NULL,
        ingested     timestamptz NOT NULL DEFAULT now(),
        time_min     timestamptz NOT NULL,
        time_max     timestamptz NOT NULL,
        traces       text[] NOT NULL
      );
      CREATE INDEX ingest_batches_traces_idx ON ingest_batches USING gin (traces);
      CREATE INDEX ingest_batches_edge_idx ON ingest_batches (edge, ingested);
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
