import type pg from 'pg';

export interface DeadLetter {
  subject: string;
  streamSeq: number | null;
  reason: string;
  payload: Uint8Array;
  /** Which part set it aside: `ingest` (the default), `coordinator`, `builder`, `exporter:<name>`. */
  source?: string;
  /** The error code (`FB_CLOUD_...`) when the cause was a coded error. */
  code?: string;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * The text as Postgres can store it: a reason may quote what was refused, and a dead letter must
 * never fail for the same cause as the message it records (NUL, lone surrogates).
 */
function storable(text: string): string {
  return text.replaceAll('\u0000', '\\u0000').replace(LONE_SURROGATE, '\uFFFD');
}

/** Keeps messages a consumer could not use, with the reason, for an operator to inspect (one statement). */
export async function insertDeadLetters(
  db: pg.Pool | pg.PoolClient,
  dead: readonly DeadLetter[],
): Promise<void> {
  if (dead.length === 0) return;
  await db.query(
    `INSERT INTO dead_letters (subject, stream_seq, reason, payload, source, code)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[], $5::text[], $6::text[])`,
    [
      dead.map((d) => storable(d.subject)),
      dead.map((d) => d.streamSeq),
      dead.map((d) => storable(d.reason)),
      dead.map((d) => Buffer.from(d.payload.subarray(0, 64 * 1024))),
      dead.map((d) => d.source ?? 'ingest'),
      dead.map((d) => d.code ?? null),
    ],
  );
}

export interface DeadLetterRow {
  id: number;
  at: Date;
  source: string;
  code: string | null;
  subject: string;
  streamSeq: number | null;
  reason: string;
  payload: Buffer | null;
}

/**
 * Dead letters newest first, for an operator: `source` keeps those of one part (`builder`, or a
 * prefix such as `exporter`, which matches `exporter:<name>`), `before` pages on by id.
 */
export async function listDeadLetters(
  db: pg.Pool | pg.PoolClient,
  opts: { limit: number; before?: number | string | null; source?: string | null },
): Promise<DeadLetterRow[]> {
  const { rows } = await db.query<{
    id: string;
    at: Date;
    source: string;
    code: string | null;
    subject: string;
    stream_seq: string | null;
    reason: string;
    payload: Buffer | null;
  }>(
    `SELECT id, at, source, code, subject, stream_seq, reason, payload FROM dead_letters
     WHERE ($1::bigint IS NULL OR id < $1)
       AND ($2::text IS NULL OR source = $2 OR source LIKE $2 || ':%')
     ORDER BY id DESC LIMIT $3`,
    [opts.before ?? null, opts.source ?? null, opts.limit],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    at: r.at,
    source: r.source,
    code: r.code,
    subject: r.subject,
    streamSeq: r.stream_seq === null ? null : Number(r.stream_seq),
    reason: r.reason,
    payload: r.payload,
  }));
}
