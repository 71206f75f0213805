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

/** Keeps messages a consumer could not use, with the reason, for an operator to inspect. */
export async function insertDeadLetters(
  db: pg.Pool | pg.PoolClient,
  dead: readonly DeadLetter[],
): Promise<void> {
  for (const d of dead) {
    await db.query(
      'INSERT INTO dead_letters (subject, stream_seq, reason, payload) VALUES ($1, $2, $3, $4)',
      [storable(d.subject), d.streamSeq, storable(d.reason), Buffer.from(d.payload.subarray(0, 64 * 1024))],
    );
  }
}
