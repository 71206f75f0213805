import type { Observation } from '@fieldbeam/protocol';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { type DeadLetter, insertDeadLetters } from '../db/dead-letters.js';
import { type BatchRecordInput, batchTraces, recordBatches } from '../db/ingest-batches.js';
import { databaseError, sqlState, UNIQUE_VIOLATION } from '../db/pg-errors.js';
import { recordSpans, type SeqSpan } from '../fleet/completeness.js';
import {
  COPY_BINARY_HEADER,
  COPY_BINARY_TRAILER,
  type EncodedRows,
  encodeRows,
  rowCount,
  withSeq,
} from './copy-binary.js';
import { INGEST_COLUMNS, STAGE_DDL } from './observation-fields.js';

export type { DeadLetter } from '../db/dead-letters.js';

/**
 * The observations of one stream message; `seq` is its stream sequence. They come as binary COPY
 * rows (`rows`, encoded on a decode thread), or as objects (`observations`), which are encoded here.
 */
export interface StagedBatch {
  seq: number;
  rows?: EncodedRows;
  observations?: readonly Observation[];
  /** The message's envelope: with it, the batch is recorded in `ingest_batches` (trace lookups). */
  envelope?: BatchRecordInput['envelope'];
  /** What `ingest_batches` records of its readings; computed from `observations` when absent. */
  stored?: BatchRecordInput['stored'];
}

/** A batch's rows, encoding its observations if that was not done yet. */
export function rowsOf(b: StagedBatch): EncodedRows {
  return b.rows ?? encodeRows(b.observations ?? []);
}

export interface CommitResult {
  /** Observations new to the table (the rest were replays). */
  inserted: number;
  /** `fresh`: one plain COPY; `replay`: some rows existed, so the staged ON CONFLICT path ran. */
  path: 'fresh' | 'replay' | 'empty';
  /** New observations per stream sequence; a sequence with none is absent. */
  perBatch: Map<number, number>;
}

/**
 * A `COPY ... FROM STDIN` being written: `write` waits while the stream is full, and neither waits nor
 * writes once the server has refused the COPY (e.g. a key violation); `end` then rejects with the
 * server's error.
 */
function copyStream(client: pg.PoolClient | pg.Client, sql: string) {
  const stream = client.query(copyFrom(sql));
  let failed = false;
  const done = new Promise<void>((resolve, reject) => {
    stream.once('finish', resolve);
    stream.once('error', (err) => {
      failed = true;
      reject(err);
    });
  });
  const settled = done.then(
    () => {},
    () => {},
  );
  return {
    get failed() {
      return failed;
    },
    async write(chunk: string | Uint8Array): Promise<void> {
      if (!failed && !stream.write(chunk))
        await Promise.race([new Promise((r) => stream.once('drain', r)), settled]);
    },
    end(last: string | Uint8Array): Promise<void> {
      if (!failed) stream.end(last);
      return done;
    },
  };
}

/** Writes text to a COPY ... FROM STDIN in chunks of about `chunk` characters (see `copyStream`). */
export async function copyLines(
  client: pg.PoolClient | pg.Client,
  sql: string,
  lines: Iterable<string>,
  chunk = 256 * 1024,
): Promise<void> {
  const copy = copyStream(client, sql);
  let buf = '';
  for (const line of lines) {
    if (copy.failed) break;
    buf += line;
    if (buf.length >= chunk) {
      await copy.write(buf);
      buf = '';
    }
  }
  await copy.end(buf);
}

/**
 * Writes binary COPY rows to a `COPY ... FROM STDIN (FORMAT binary)`: the header, each chunk as it
 * is (no copy), the trailer (see `copyStream`).
 */
export async function copyBinary(
  client: pg.PoolClient | pg.Client,
  sql: string,
  chunks: Iterable<Uint8Array>,
): Promise<void> {
  const copy = copyStream(client, sql);
  await copy.write(COPY_BINARY_HEADER);
  for (const chunk of chunks) {
    if (copy.failed) break;
    if (chunk.length > 0) await copy.write(chunk);
  }
  await copy.end(COPY_BINARY_TRAILER);
}

/**
 * Postgres side of ingest, idempotent on (edge, observation id): each edge's rows are its own
 * namespace, so one edge can never pre-empt or suppress another's readings. The common case (rows never seen) is a
 * plain COPY straight into `observations`, inside a savepoint. If any row is already there (a replay,
 * a redelivery after a crash), that COPY fails on the key, the savepoint is rolled back, and the rows
 * go the careful way: COPY into a per-connection temporary staging table, then one
 * `INSERT ... SELECT ... ON CONFLICT DO NOTHING`. Monthly partitions are created on demand before the
 * transaction that needs them.
 */
export class ObservationStore {
  private readonly staged = new WeakSet<pg.PoolClient>();
  private readonly months = new Set<string>();

  constructor(private readonly pool: pg.Pool) {}

  /** Creates the monthly partitions ("YYYY-MM") not yet known, outside any ingest transaction. */
  async ensurePartitions(months: Iterable<string>): Promise<void> {
    for (const month of months) {
      if (this.months.has(month)) continue;
      await this.pool.query('SELECT fb_ensure_observation_partitions($1, $1)', [`${month}-01T00:00:00.000Z`]);
      this.months.add(month);
    }
  }

  /**
   * Inserts the batches' observations, the dead letters and the batches' sequence spans (see
   * `recordSpans`: what the collector proves each edge's completeness with) in one transaction and reports how many
   * observations were new, per batch. An id repeated inside the call is written once. Fails with a
   * CloudError: `DATA_REFUSED` (not retryable) when Postgres refused the rows themselves, so the
   * caller can set the guilty ones aside, `DATABASE` (retryable) otherwise.
   */
  async commit(
    batches: readonly StagedBatch[],
    deadLetters: readonly DeadLetter[],
    spans: readonly SeqSpan[] = [],
  ): Promise<CommitResult> {
    try {
      return await this.commitOnce(batches, deadLetters, spans);
    } catch (err) {
      throw databaseError(err, 'the ingest commit');
    }
  }

  private async commitOnce(
    batches: readonly StagedBatch[],
    deadLetters: readonly DeadLetter[],
    spans: readonly SeqSpan[],
  ): Promise<CommitResult> {
    const encoded = batches.map(rowsOf);
    const months = new Set<string>();
    const counts = new Map<number, number>();
    let rows = 0;
    batches.forEach((b, i) => {
      const r = encoded[i] as EncodedRows;
      counts.set(b.seq, (counts.get(b.seq) ?? 0) + rowCount(r));
      rows += rowCount(r);
      for (const m of r.months) months.add(m);
    });
    if (rows > 0) await this.ensurePartitions(months);
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      let perBatch = new Map<number, number>();
      let path: CommitResult['path'] = 'empty';
      if (rows > 0) {
        path = 'fresh';
        await client.query('SAVEPOINT fresh');
        try {
          await copyBinary(
            client,
            `COPY observations (${INGEST_COLUMNS}) FROM STDIN (FORMAT binary)`,
            encoded.map((r) => r.bytes),
          );
          await client.query('RELEASE SAVEPOINT fresh');
          perBatch = counts;
        } catch (err) {
          // 23505: some row is already stored (a replay) or repeated in this round.
          if (sqlState(err) !== UNIQUE_VIOLATION) throw err;
          // Undo the COPY, and leave the savepoint so what follows runs in the top transaction
          // (the mixed-replay count below relies on xmin being the top transaction's id).
          await client.query('ROLLBACK TO SAVEPOINT fresh');
          await client.query('RELEASE SAVEPOINT fresh');
          path = 'replay';
          perBatch = await this.insertStaged(client, batches, encoded);
        }
      }
      await insertDeadLetters(client, deadLetters);
      await recordSpans(client, spans);
      const records: BatchRecordInput[] = [];
      for (const b of batches) {
        if (!b.envelope) continue;
        const stored = b.stored ?? batchTraces(b.observations ?? []);
        records.push({ seq: b.seq, envelope: b.envelope, stored });
      }
      await recordBatches(client, records, perBatch);
      await client.query('COMMIT');
      let inserted = 0;
      for (const n of perBatch.values()) inserted += n;
      return { inserted, perBatch, path };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      // A broken connection must not go back to the pool with a half-done COPY on it.
      broken = err as Error;
      this.staged.delete(client);
      throw err;
    } finally {
      client.release(broken);
    }
  }

  /**
   * The replay-safe path: staging table, then INSERT ... ON CONFLICT DO NOTHING. A row repeated in
   * the round is staged twice and stored once; the per-batch count credits it to its first batch.
   */
  private async insertStaged(
    client: pg.PoolClient,
    batches: readonly StagedBatch[],
    encoded: readonly EncodedRows[],
  ): Promise<Map<number, number>> {
    if (!this.staged.has(client)) {
      await client.query(STAGE_DDL);
      this.staged.add(client);
    }
    const staged = new Map<number, number>();
    let total = 0;
    const chunks = batches.map((b, i) => {
      const r = encoded[i] as EncodedRows;
      staged.set(b.seq, (staged.get(b.seq) ?? 0) + rowCount(r));
      total += rowCount(r);
      return withSeq(r, b.seq);
    });
    await copyBinary(client, `COPY fb_stage (seq, ${INGEST_COLUMNS}) FROM STDIN (FORMAT binary)`, chunks);
    const r = await client.query<{ n: number }>(
      `WITH ins AS (
         INSERT INTO observations (${INGEST_COLUMNS}) SELECT ${INGEST_COLUMNS} FROM fb_stage
         ON CONFLICT (time, id, edge) DO NOTHING RETURNING 1)
       SELECT count(*)::int AS n FROM ins`,
    );
    const n = r.rows[0]?.n ?? 0;
    // Every staged row new: none was repeated either.
    if (n === total) return staged;
    if (n === 0) return new Map();
    // Some new, some not: the rows this transaction wrote carry its id in xmin; each counts once.
    const per = await client.query<{ seq: string; n: number }>(
      `SELECT seq, count(*)::int AS n FROM (
         SELECT DISTINCT ON (s.time, s.id, s.edge) s.seq FROM fb_stage s
         JOIN observations o ON o.time = s.time AND o.id = s.id AND o.edge = s.edge
         WHERE o.xmin = pg_current_xact_id()::xid
         ORDER BY s.time, s.id, s.edge, s.seq) d
       GROUP BY seq`,
    );
    return new Map(per.rows.map((row) => [Number(row.seq), row.n]));
  }

  async count(): Promise<number> {
    const r = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM observations');
    return Number(r.rows[0]?.n ?? 0);
  }
}
