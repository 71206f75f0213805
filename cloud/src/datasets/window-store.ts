import type pg from 'pg';
import type { DatasetDef } from './dataset-config.js';

/** One ingest batch touching one dataset window. */
export interface WindowMark {
  dataset: DatasetDef;
  windowStart: number;
  /** `FB_OBS:<stream seq>` of the ingest batch, or `manual:...` for an operator's rebuild. */
  batch: string;
  edge: string;
  /** Observations of the batch that were new (0: a replay, which marks only a window it never marked). */
  inserted: number;
}

/** A window a builder holds the lease on. */
export interface Claim {
  dataset: string;
  windowStart: Date;
  windowEnd: Date;
  /** The generation the build covers; later marks leave the window dirty. */
  generation: number;
  version: number;
  /** Claimed before window end + grace: data may still arrive on time. */
  provisional: boolean;
  buildId: number;
  claimedAt: Date;
  /** Attempts since the last successful build, this one included. */
  attempts: number;
}

export interface BuiltVersion {
  key: string;
  rows: number;
  bytes: number;
  sha256: string;
  buildMs: number;
}

export type WindowState = 'building' | 'due' | 'waiting' | 'built' | 'failed';

export interface WindowRow {
  dataset: string;
  windowStart: Date;
  windowEnd: Date;
  state: WindowState;
  generation: number;
  builtGeneration: number;
  version: number | null;
  final: boolean;
  dueAt: Date | null;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  lastDataAt: Date;
  attempts: number;
  lastError: string | null;
}

export interface VersionRow {
  dataset: string;
  windowStart: Date;
  windowEnd: Date;
  version: number;
  key: string;
  rows: number;
  bytes: number;
  sha256: string;
  generation: number;
  provisional: boolean;
  builtBy: string;
  builtAt: Date;
  buildMs: number;
}

const STATE_SQL = `CASE
  WHEN w.lease_until > now() THEN 'building'
  WHEN w.due_at IS NOT NULL AND w.due_at <= now() THEN CASE WHEN w.last_error IS NULL THEN 'due' ELSE 'failed' END
  WHEN w.due_at IS NOT NULL THEN CASE WHEN w.last_error IS NULL THEN 'waiting' ELSE 'failed' END
  WHEN w.last_error IS NOT NULL THEN 'failed'
  ELSE 'built' END`;

interface RawWindow {
  dataset: string;
  window_start: Date;
  window_end: Date;
  state: WindowState;
  generation: string;
  built_generation: string;
  version: number | null;
  final: boolean;
  due_at: Date | null;
  lease_owner: string | null;
  lease_until: Date | null;
  last_data_at: Date;
  attempts: number;
  last_error: string | null;
}

const toWindow = (r: RawWindow): WindowRow => ({
  dataset: r.dataset,
  windowStart: r.window_start,
  windowEnd: r.window_end,
  state: r.state,
  generation: Number(r.generation),
  builtGeneration: Number(r.built_generation),
  version: r.version,
  final: r.final,
  dueAt: r.due_at,
  leaseOwner: r.lease_owner,
  leaseUntil: r.lease_until,
  lastDataAt: r.last_data_at,
  attempts: r.attempts,
  lastError: r.last_error,
});

/**
 * The coordinator's and builders' shared state in Postgres: windows with generation counters and a
 * due time, leases for builds, versions, the audit trail. Every time comparison uses the database
 * clock, so collectors with skewed clocks agree on what is due and whose lease ran out.
 */
export class WindowStore {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Records marks and makes their windows dirty: bumps the generation and moves the due time.
   * Idempotent per (window, batch) for replays; a batch with new rows always counts.
   */
  async mark(input: readonly WindowMark[]): Promise<number> {
    if (input.length === 0) return 0;
    // One row per (window, batch) per statement: ON CONFLICT cannot touch a row twice.
    const unique = new Map<string, WindowMark>();
    for (const m of input) {
      const k = `${m.dataset.name}|${m.windowStart}|${m.batch}`;
      const seen = unique.get(k);
      unique.set(k, seen ? { ...seen, inserted: seen.inserted + m.inserted } : m);
    }
    const marks = [...unique.values()];
    const col = <T>(f: (m: WindowMark) => T) => marks.map(f);
    // The due time: quiet (now + debounce), but never later than dirty_since + max_delay; without
    // provisional builds, never before the window's end + grace either (`dueAt` in windows.ts).
    const r = await this.pool.query(
      `WITH m AS (
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::text[],
                              $6::int[], $7::bigint[], $8::bigint[], $9::boolean[], $10::bigint[])
           AS t(dataset, window_start, window_end, batch, edge, inserted, grace_ms, debounce_ms, provisional,
                max_delay_ms)),
       touched AS (
         INSERT INTO window_marks AS wm (dataset, window_start, batch, edge, inserted)
         SELECT dataset, window_start, batch, edge, inserted FROM m
         ON CONFLICT (dataset, window_start, batch)
           DO UPDATE SET inserted = wm.inserted + EXCLUDED.inserted, at = now() WHERE EXCLUDED.inserted > 0
         RETURNING dataset, window_start, batch),
       agg AS (
         SELECT m.dataset, m.window_start, max(m.window_end) AS window_end, count(*) AS n,
                max(now() + m.debounce_ms * interval '1 ms') AS quiet_at,
                max(CASE WHEN m.provisional THEN NULL ELSE m.window_end + m.grace_ms * interval '1 ms' END) AS floor_at,
                max(m.max_delay_ms) AS max_delay_ms
         FROM m JOIN touched t USING (dataset, window_start, batch)
         GROUP BY m.dataset, m.window_start)
       INSERT INTO dataset_windows AS w (dataset, window_start, window_end, generation, due_at, last_data_at, dirty_since)
       SELECT dataset, window_start, window_end, n,
              greatest(floor_at, least(quiet_at, now() + max_delay_ms * interval '1 ms')), now(), now()
       FROM agg
       ON CONFLICT (dataset, window_start) DO UPDATE
         SET generation = w.generation + EXCLUDED.generation,
             due_at = (SELECT greatest(a.floor_at,
                                       least(a.quiet_at, coalesce(w.dirty_since, now()) + a.max_delay_ms * interval '1 ms'))
                       FROM agg a WHERE a.dataset = w.dataset AND a.window_start = w.window_start),
             dirty_since = coalesce(w.dirty_since, now()),
             last_data_at = now(), last_error = NULL, attempts = 0, updated_at = now()`,
      [
        col((m) => m.dataset.name),
        col((m) => new Date(m.windowStart).toISOString()),
        col((m) => new Date(m.windowStart + m.dataset.window).toISOString()),
        col((m) => m.batch),
        col((m) => m.edge),
        col((m) => m.inserted),
        col((m) => m.dataset.grace),
        col((m) => m.dataset.debounce),
        col((m) => m.dataset.provisional),
        col((m) => m.dataset.maxDelay ?? null),
      ],
    );
    return r.rowCount ?? 0;
  }

  /**
   * Claims the due window that waited longest, if any: `FOR UPDATE SKIP LOCKED` keeps two builders
   * off one row, and the lease written here keeps every other builder away until it runs out.
   */
  async claim(datasets: readonly DatasetDef[], owner: string, leaseMs: number): Promise<Claim | undefined> {
    if (datasets.length === 0) return undefined;
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const r = await client.query<{
        dataset: string;
        window_start: Date;
        window_end: Date;
        generation: string;
        version: number;
        claimed_at: Date;
        attempts: number;
      }>(
        `WITH c AS (
           SELECT dataset, window_start FROM dataset_windows
           WHERE due_at <= now() AND (lease_until IS NULL OR lease_until < now()) AND dataset = ANY($1)
           ORDER BY due_at LIMIT 1
           FOR UPDATE SKIP LOCKED)
         UPDATE dataset_windows w
           SET lease_owner = $2, lease_until = now() + $3 * interval '1 ms', claimed_generation = w.generation,
               dirty_since = NULL,
               next_version = w.next_version + 1, attempts = w.attempts + 1, updated_at = now()
         FROM c WHERE w.dataset = c.dataset AND w.window_start = c.window_start
         RETURNING w.dataset, w.window_start, w.window_end, w.generation, w.next_version AS version, now() AS claimed_at, w.attempts`,
        [datasets.map((d) => d.name), owner, leaseMs],
      );
      const row = r.rows[0];
      if (!row) {
        await client.query('COMMIT');
        return undefined;
      }
      const b = await client.query<{ id: string }>(
        'INSERT INTO dataset_builds (dataset, window_start, version, owner) VALUES ($1, $2, $3, $4) RETURNING id',
        [row.dataset, row.window_start, row.version, owner],
      );
      await client.query('COMMIT');
      const def = datasets.find((d) => d.name === row.dataset);
      return {
        dataset: row.dataset,
        windowStart: row.window_start,
        windowEnd: row.window_end,
        generation: Number(row.generation),
        version: row.version,
        provisional: row.claimed_at.getTime() < row.window_end.getTime() + (def?.grace ?? 0),
        buildId: Number(b.rows[0]?.id),
        claimedAt: row.claimed_at,
        attempts: row.attempts,
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  /** Extends the lease; false when it is no longer ours (it ran out and another builder took it). */
  async renew(claim: Claim, owner: string, leaseMs: number): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE dataset_windows SET lease_until = now() + $4 * interval '1 ms'
       WHERE dataset = $1 AND window_start = $2 AND lease_owner = $3 AND claimed_generation IS NOT NULL`,
      [claim.dataset, claim.windowStart, owner, leaseMs],
    );
    return r.rowCount === 1;
  }

  /**
   * Records a finished build, if the lease is still ours: the version, and the window's next due
   * time (none; the final build at end + grace after a provisional one; or unchanged when new data
   * arrived during the build). Returns false when the build was superseded.
   */
  async complete(claim: Claim, owner: string, built: BuiltVersion, graceMs: number): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const r = await client.query(
        `UPDATE dataset_windows SET
           built_generation = claimed_generation, version = $4, final = NOT $5,
           due_at = CASE WHEN generation > claimed_generation THEN due_at
                         WHEN $5 THEN window_end + $6 * interval '1 ms'
                         ELSE NULL END,
           lease_owner = NULL, lease_until = NULL, claimed_generation = NULL,
           last_error = NULL, attempts = 0, updated_at = now()
         WHERE dataset = $1 AND window_start = $2 AND lease_owner = $3`,
        [claim.dataset, claim.windowStart, owner, claim.version, claim.provisional, graceMs],
      );
      const ours = r.rowCount === 1;
      if (ours) {
        await client.query(
          `INSERT INTO dataset_versions (dataset, window_start, window_end, version, key, rows, bytes, sha256,
                                         generation, provisional, built_by, build_ms)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
          [
            claim.dataset,
            claim.windowStart,
            claim.windowEnd,
            claim.version,
            built.key,
            built.rows,
            built.bytes,
            built.sha256,
            claim.generation,
            claim.provisional,
            owner,
            Math.round(built.buildMs),
          ],
        );
      }
      await client.query(
        `UPDATE dataset_builds SET finished_at = clock_timestamp(), outcome = $2 WHERE id = $1`,
        [claim.buildId, ours ? 'built' : 'superseded'],
      );
      await client.query('COMMIT');
      return ours;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * Gives the window back after a failed build, due again after `retryMs`; with `retryMs` null it is
   * given up: failed with no due time, until new data or a rebuild makes it due again.
   */
  async fail(claim: Claim, owner: string, error: string, retryMs: number | null): Promise<void> {
    await this.pool.query(
      `WITH w AS (
         UPDATE dataset_windows SET lease_owner = NULL, lease_until = NULL, claimed_generation = NULL,
           dirty_since = coalesce(dirty_since, now()), last_error = $4, due_at = now() + $5 * interval '1 ms', updated_at = now()
         WHERE dataset = $1 AND window_start = $2 AND lease_owner = $3)
       UPDATE dataset_builds SET finished_at = clock_timestamp(), outcome = 'failed', error = $4 WHERE id = $6`,
      [claim.dataset, claim.windowStart, owner, error.slice(0, 2000), retryMs, claim.buildId],
    );
  }

  /** Versions recorded but not yet announced on the stream (older than `minAgeMs`). */
  async unannounced(minAgeMs: number, limit = 100): Promise<VersionRow[]> {
    const r = await this.pool.query(
      `SELECT * FROM dataset_versions WHERE NOT announced AND built_at < now() - $1 * interval '1 ms'
       ORDER BY built_at LIMIT $2`,
      [minAgeMs, limit],
    );
    return r.rows.map(toVersion);
  }

  async markAnnounced(dataset: string, windowStart: Date, version: number): Promise<void> {
    await this.pool.query(
      'UPDATE dataset_versions SET announced = true WHERE dataset = $1 AND window_start = $2 AND version = $3',
      [dataset, windowStart, version],
    );
  }

  /** Makes a window due now, whatever its state (operator's rebuild); creates it when new. */
  async requestRebuild(dataset: DatasetDef, windowStart: number, reason: string): Promise<void> {
    await this.pool.query(
      `WITH m AS (
         INSERT INTO window_marks (dataset, window_start, batch, edge, inserted) VALUES ($1, $2, $4, '', 0))
       INSERT INTO dataset_windows AS w (dataset, window_start, window_end, generation, due_at, last_data_at, dirty_since)
       VALUES ($1, $2, $3, 1, now(), now(), now())
       ON CONFLICT (dataset, window_start) DO UPDATE
         SET generation = w.generation + 1, due_at = now(), dirty_since = coalesce(w.dirty_since, now()), last_error = NULL, attempts = 0, updated_at = now()`,
      [
        dataset.name,
        new Date(windowStart).toISOString(),
        new Date(windowStart + dataset.window).toISOString(),
        `manual:${reason}`,
      ],
    );
  }

  async windows(filter: { dataset?: string; limit?: number } = {}): Promise<WindowRow[]> {
    const r = await this.pool.query<RawWindow>(
      `SELECT w.*, ${STATE_SQL} AS state FROM dataset_windows w
       WHERE $1::text IS NULL OR w.dataset = $1
       ORDER BY w.dataset, w.window_start DESC LIMIT $2`,
      [filter.dataset ?? null, filter.limit ?? 1000],
    );
    return r.rows.map(toWindow);
  }

  async versions(dataset: string, windowStart?: Date): Promise<VersionRow[]> {
    const r = await this.pool.query(
      `SELECT * FROM dataset_versions WHERE dataset = $1 AND ($2::timestamptz IS NULL OR window_start = $2)
       ORDER BY window_start DESC, version DESC`,
      [dataset, windowStart ?? null],
    );
    return r.rows.map(toVersion);
  }

  /** The audit trail of a window: which ingest batches (or operators) touched it, oldest first. */
  async marks(
    dataset: string,
    windowStart: Date,
    limit = 1000,
  ): Promise<{ batch: string; edge: string; inserted: number; at: Date }[]> {
    const r = await this.pool.query<{ batch: string; edge: string; inserted: number; at: Date }>(
      `SELECT batch, edge, inserted, at FROM window_marks WHERE dataset = $1 AND window_start = $2
       ORDER BY at, batch LIMIT $3`,
      [dataset, windowStart, limit],
    );
    return r.rows;
  }

  /** Windows per state, for `/metrics`. */
  async stateCounts(): Promise<Map<string, Map<WindowState, number>>> {
    const r = await this.pool.query<{ dataset: string; state: WindowState; n: string }>(
      `SELECT w.dataset, ${STATE_SQL} AS state, count(*) AS n FROM dataset_windows w GROUP BY 1, 2`,
    );
    const out = new Map<string, Map<WindowState, number>>();
    for (const row of r.rows) {
      const m = out.get(row.dataset) ?? new Map<WindowState, number>();
      m.set(row.state, Number(row.n));
      out.set(row.dataset, m);
    }
    return out;
  }
}

function toVersion(r: Record<string, unknown>): VersionRow {
  return {
    dataset: r.dataset as string,
    windowStart: r.window_start as Date,
    windowEnd: r.window_end as Date,
    version: r.version as number,
    key: r.key as string,
    rows: Number(r.rows),
    bytes: Number(r.bytes),
    sha256: r.sha256 as string,
    generation: Number(r.generation),
    provisional: r.provisional as boolean,
    builtBy: r.built_by as string,
    builtAt: r.built_at as Date,
    buildMs: r.build_ms as number,
  };
}
