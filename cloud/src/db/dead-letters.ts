import type pg from 'pg';

export interface DeadLetter {
  subject: string;
  streamSeq: number | null;
  reason: string;
  payload: Uint8Array;
}

/** Keeps messages a consumer could not use, with the reason, for an operator to inspect. */
export async function insertDeadLetters(
  db: pg.Pool | pg.PoolClient,
  dead: readonly DeadLetter[],
): Promise<void> {
  for (const d of dead) {
    await db.query(
      'INSERT INTO dead_letters (subject, stream_seq, reason, payload) VALUES ($1, $2, $3, $4)',
      [d.subject, d.streamSeq, d.reason, Buffer.from(d.payload.subarray(0, 64 * 1024))],
    );
  }
}
