import type pg from 'pg';
import type { Logger } from 'pino';
import type { createCloudMetrics } from '../metrics.js';
import { PRUNE_BATCH_ROWS, type Retention } from './retention-settings.js';

/** Held by the collector pruning right now; the others skip their round. */
const PRUNE_LOCK = 727010;

export type PrunedTable = 'window_marks' | 'ingest_batches' | 'dataset_builds' | 'dead_letters';

/**
 * One bounded delete per table: at most `$2` rows older than `now() - $1 ms`. dead_letters and
 * dataset_builds walk their id (bigserial, so the oldest rows come first and the scan stops early);
 * window_marks has no id, and its oldest rows sit first in the heap, where a limited scan finds them.
 * ingest_batches (what a trace and a window's audit reach a message by) goes with the window audit, and
 * walks its stream sequence, which grows with the ingest time.
 */
const DELETES: Record<PrunedTable, { retention: keyof Retention; sql: string }> = {
  window_marks: {
    retention: 'windowMarksMs',
    sql: `DELETE FROM window_marks WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM window_marks WHERE at < now() - $1 * interval '1 ms' LIMIT $2))`,
  },
  ingest_batches: {
    retention: 'windowMarksMs',
    sql: `DELETE FROM ingest_batches WHERE stream_seq IN (
            SELECT stream_seq FROM ingest_batches
             WHERE ingested < now() - $1 * interval '1 ms' ORDER BY stream_seq LIMIT $2)`,
  },
  dataset_builds: {
    retention: 'datasetBuildsMs',
    // An attempt that never finished (its process died) goes by when it started.
    sql: `DELETE FROM dataset_builds WHERE id IN (
            SELECT id FROM dataset_builds
             WHERE coalesce(finished_at, started_at) < now() - $1 * interval '1 ms' ORDER BY id LIMIT $2)`,
  },
  dead_letters: {
    retention: 'deadLettersMs',
    sql: `DELETE FROM dead_letters WHERE id IN (
            SELECT id FROM dead_letters WHERE at < now() - $1 * interval '1 ms' ORDER BY id LIMIT $2)`,
  },
};

export interface PruneOptions {
  /** Rows per delete statement. */
  batchRows?: number;
  /** Statements per table and round: a backlog larger than this is left to the next round. */
  maxBatches?: number;
  /** Pause between statements, so that ingest's transactions keep the database (ms). */
  pauseMs?: number;
}

export interface PruneResult {
  /** Another collector was pruning: nothing done. */
  skipped: boolean;
  pruned: Record<PrunedTable, number>;
}

/**
 * Deletes the rows past their retention, in short statements of at most `batchRows` rows, under an
 * advisory lock so that one collector at a time does it.
 */
export async function pruneOnce(
  pool: pg.Pool,
  retention: Retention,
  options: PruneOptions = {},
): Promise<PruneResult> {
  const batchRows = options.batchRows ?? PRUNE_BATCH_ROWS;
  const maxBatches = options.maxBatches ?? 100;
  const pauseMs = options.pauseMs ?? 20;
  const pruned: Record<PrunedTable, number> = {
    window_marks: 0,
    ingest_batches: 0,
    dataset_builds: 0,
    dead_letters: 0,
  };
  const client = await pool.connect();
  let locked = false;
  try {
    locked =
      (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [PRUNE_LOCK])).rows[0]
        ?.ok === true;
    if (!locked) return { skipped: true, pruned };
    for (const [table, d] of Object.entries(DELETES) as [PrunedTable, (typeof DELETES)[PrunedTable]][]) {
      for (let i = 0; i < maxBatches; i++) {
        const n = (await client.query(d.sql, [retention[d.retention], batchRows])).rowCount ?? 0;
        pruned[table] += n;
        if (n < batchRows) break;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    }
    return { skipped: false, pruned };
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock($1)', [PRUNE_LOCK]).catch(() => {});
    client.release();
  }
}

export interface Pruner {
  /** Runs a round now (tests, and the first round); resolves when it is done. */
  runNow(): Promise<PruneResult | undefined>;
  close(): Promise<void>;
}

/**
 * Prunes every `retention.everyMs`, the first round `firstDelayMs` after start (start-up has more
 * urgent work). A failed round is logged and counted; the next one tries again.
 */
export function startPruner(
  deps: { pool: pg.Pool; log: Logger; metrics: ReturnType<typeof createCloudMetrics> },
  retention: Retention,
  options: PruneOptions & { firstDelayMs?: number } = {},
): Pruner {
  const { pool, log, metrics } = deps;
  let running: Promise<PruneResult | undefined> | undefined;
  let closed = false;
  const round = (): Promise<PruneResult | undefined> => {
    running ??= pruneOnce(pool, retention, options)
      .then((r) => {
        if (r.skipped) {
          metrics.retentionRounds.inc({ outcome: 'skipped' });
          return r;
        }
        metrics.retentionRounds.inc({ outcome: 'pruned' });
        for (const [table, n] of Object.entries(r.pruned)) metrics.retentionPruned.inc({ table }, n);
        if (Object.values(r.pruned).some((n) => n > 0))
          log.info({ pruned: r.pruned }, 'pruned rows past retention');
        return r;
      })
      .catch((err: Error) => {
        metrics.retentionRounds.inc({ outcome: 'failed' });
        log.warn({ err: err.message }, 'pruning failed; the next round tries again');
        return undefined;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  let timer: NodeJS.Timeout | undefined;
  const schedule = (ms: number) => {
    if (closed) return;
    timer = setTimeout(() => void round().then(() => schedule(retention.everyMs)), ms);
    timer.unref();
  };
  schedule(options.firstDelayMs ?? Math.min(60_000, retention.everyMs));
  return {
    runNow: round,
    async close() {
      closed = true;
      clearTimeout(timer);
      await running;
    },
  };
}
