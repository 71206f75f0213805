import type pg from 'pg';

export interface DeadLetter {
  subject: string;
  streamSeq: number | null;
  reason: string;
  payload: Uint8Array;
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
    `INSERT INTO dead_letters (subject, stream_seq, reason, payload)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[])`,
    [
      dead.map((d) => storable(d.subject)),
      dead.map((d) => d.streamSeq),
      dead.map((d) => storable(d.reason)),
      dead.map((d) => Buffer.from(d.payload.subarray(0, 64 * 1024))),
    ],
  );
}
