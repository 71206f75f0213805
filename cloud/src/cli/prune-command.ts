import type pg from 'pg';
import type { CloudConfig } from '../config.js';
import { createObjectStore } from '../storage/create-object-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import { withPool } from './database.js';

/** The options of `datasets prune`, as parsed. */
export interface PruneVersionsOptions {
  /** Newest versions of each window kept (at least 1). */
  keep: number;
  dataset?: string;
  dryRun?: boolean;
}

export interface PruneVersionsResult {
  versions: number;
  objects: number;
  bytes: number;
  /** Objects whose removal failed (their rows are gone: a later run does not see them again). */
  failed: string[];
}

interface Candidate {
  dataset: string;
  window_start: Date;
  version: number;
  key: string;
  bytes: string;
  export_keys: string[];
}

/** Versions removed per transaction; each one is checked against the window's current version. */
const CHUNK = 100;

/**
 * Old versions of every window, beyond the newest `keep`. Never the version the window points to as
 * current (a rebuild that failed after a newer one leaves an older one current), never one not yet
 * announced (a builder will announce it and exporters will read it).
 */
const CANDIDATES = `
  SELECT v.dataset, v.window_start, v.version, v.key, v.bytes,
         coalesce(array_agg(e.key) FILTER (WHERE e.key IS NOT NULL), '{}') AS export_keys
    FROM (SELECT *, row_number() OVER (PARTITION BY dataset, window_start ORDER BY version DESC) AS rank
            FROM dataset_versions WHERE $2::text IS NULL OR dataset = $2) v
    LEFT JOIN dataset_windows w ON w.dataset = v.dataset AND w.window_start = v.window_start
    LEFT JOIN dataset_exports e
      ON e.dataset = v.dataset AND e.window_start = v.window_start AND e.version = v.version
   WHERE v.rank > $1 AND v.announced AND v.version IS DISTINCT FROM w.version
   GROUP BY v.dataset, v.window_start, v.version, v.key, v.bytes
   ORDER BY v.dataset, v.window_start, v.version`;

const iso = (d: Date) => d.toISOString().replace('.000Z', 'Z');

/**
 * Removes old dataset versions: their rows first (in a transaction that re-checks they are not
 * current), then their objects and their exports' objects, so that nothing the database still lists
 * is ever missing from the store. A key some kept row still names is left in place.
 */
export async function pruneVersions(
  deps: { pool: pg.Pool; store: ObjectStore; out: NodeJS.WritableStream },
  options: PruneVersionsOptions,
): Promise<PruneVersionsResult> {
  const { pool, store, out } = deps;
  const keep = Math.max(1, options.keep);
  const all = (await pool.query<Candidate>(CANDIDATES, [keep, options.dataset ?? null])).rows;
  const result: PruneVersionsResult = { versions: 0, objects: 0, bytes: 0, failed: [] };
  const verb = options.dryRun ? 'would delete' : 'deleted';
  out.write(
    `${all.length} version(s) beyond the newest ${keep} of their window${options.dryRun ? ' (dry run: nothing is deleted)' : ''}\n`,
  );
  for (let i = 0; i < all.length; i += CHUNK) {
    const chunk = all.slice(i, i + CHUNK);
    const removed = options.dryRun ? chunk : await removeRows(pool, chunk);
    const keys = removed.flatMap((c) => [c.key, ...c.export_keys]);
    const stillNamed = options.dryRun ? new Set<string>() : await keysStillNamed(pool, keys);
    for (const c of removed) {
      let objects = 0;
      for (const key of [c.key, ...c.export_keys]) {
        if (stillNamed.has(key)) continue;
        if (!options.dryRun) {
          try {
            await store.delete(key);
          } catch (err) {
            result.failed.push(key);
            out.write(`  could not delete ${key}: ${(err as Error).message}\n`);
            continue;
          }
        }
        objects++;
      }
      result.versions++;
      result.objects += objects;
      result.bytes += Number(c.bytes);
      out.write(
        `[${result.versions}/${all.length}] ${verb} ${c.dataset} ${iso(c.window_start)} version ${c.version} (${objects} object(s))\n`,
      );
    }
  }
  out.write(
    `${verb} ${result.versions} version(s), ${result.objects} object(s), ${(result.bytes / 1024 ** 2).toFixed(1)} MiB of builds${result.failed.length ? `; ${result.failed.length} object(s) could not be deleted` : ''}\n`,
  );
  return result;
}

/** Deletes the rows of `chunk` still not current; returns those it deleted. */
async function removeRows(pool: pg.Pool, chunk: Candidate[]): Promise<Candidate[]> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const gone: Candidate[] = [];
    for (const c of chunk) {
      const r = await client.query(
        `DELETE FROM dataset_versions v WHERE dataset = $1 AND window_start = $2 AND version = $3
            AND NOT EXISTS (SELECT 1 FROM dataset_windows w WHERE w.dataset = v.dataset
                              AND w.window_start = v.window_start AND w.version = v.version)`,
        [c.dataset, c.window_start, c.version],
      );
      if (r.rowCount === 0) continue;
      await client.query(
        'DELETE FROM dataset_exports WHERE dataset = $1 AND window_start = $2 AND version = $3',
        [c.dataset, c.window_start, c.version],
      );
      gone.push(c);
    }
    await client.query('COMMIT');
    return gone;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

async function keysStillNamed(pool: pg.Pool, keys: string[]): Promise<Set<string>> {
  const r = await pool.query<{ key: string }>(
    `SELECT key FROM dataset_versions WHERE key = ANY($1::text[])
     UNION SELECT key FROM dataset_exports WHERE key = ANY($1::text[])`,
    [keys],
  );
  return new Set(r.rows.map((row) => row.key));
}

/** `fieldbeam-cloud datasets prune`: exit status 0, or 1 when some object could not be deleted. */
export async function runPruneCommand(config: CloudConfig, options: PruneVersionsOptions): Promise<number> {
  const store = createObjectStore(config);
  try {
    const r = await withPool(config, (pool) => pruneVersions({ pool, store, out: process.stdout }, options));
    return r.failed.length > 0 ? 1 : 0;
  } finally {
    await store.close();
  }
}
