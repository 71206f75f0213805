import type { Observation, ObservationBatch } from '@fieldbeam/protocol';
import type pg from 'pg';

/** A stored stream message: its sequence, its envelope and the observations committed from it. */
export interface BatchRecordInput {
  seq: number;
  envelope: Pick<ObservationBatch, 'edge' | 'seq' | 'buffer'>;
  /** What was committed of it (`batchTraces` of its observations, with their count). */
  stored: BatchTraces;
}

/** A batch's readings as `ingest_batches` records them. */
export interface BatchTraces {
  count: number;
  traces: string[];
  timeMin: string;
  timeMax: string;
}

/** The distinct trace-ids of the observations, and their time range (ISO strings compare as times). */
export function batchTraces(observations: readonly Observation[]): BatchTraces {
  const traces = new Set<string>();
  // Readings of one message sit side by side: the last trace seen spares most Set lookups.
  let last: string | undefined;
  let timeMin = observations[0]?.time ?? '';
  let timeMax = timeMin;
  for (const o of observations) {
    if (o.trace !== undefined && o.trace !== last) {
      last = o.trace;
      traces.add(o.trace);
    }
    if (o.time < timeMin) timeMin = o.time;
    else if (o.time > timeMax) timeMax = o.time;
  }
  return { count: observations.length, traces: [...traces], timeMin, timeMax };
}

/**
 * Records, inside the ingest transaction, one `ingest_batches` row per stored stream message: its
 * edge buffer rows (`seq`), its JetStream sequence, how many readings were new, the round (this
 * transaction's id; `ingested` is its start, as on the rows) and the trace-ids it carried. What
 * `fieldbeam-cloud trace` follows from a trace-id to its readings, and from a window mark to its
 * traces. A redelivered message keeps the row of its first commit. One statement per round.
 */
export async function recordBatches(
  client: pg.ClientBase,
  batches: readonly BatchRecordInput[],
  inserted: ReadonlyMap<number, number>,
): Promise<void> {
  const rows = batches.filter((b) => b.stored.count > 0);
  if (rows.length === 0) return;
  const summaries = rows.map((b) => b.stored);
  await client.query(
    `INSERT INTO ingest_batches
       (stream_seq, edge, buffer_id, seq_first, seq_last, observations, inserted, round, time_min, time_max, traces)
     SELECT s, e, b, f, l, n, i, pg_current_xact_id()::text::bigint, tmin, tmax,
            ARRAY(SELECT jsonb_array_elements_text(t))
     FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::int[], $7::int[],
                 $8::timestamptz[], $9::timestamptz[], $10::jsonb[])
       AS r(s, e, b, f, l, n, i, tmin, tmax, t)
     ON CONFLICT (stream_seq) DO NOTHING`,
    [
      rows.map((b) => b.seq),
      rows.map((b) => b.envelope.edge),
      rows.map((b) => b.envelope.buffer?.id ?? ''),
      rows.map((b) => b.envelope.seq[0]),
      rows.map((b) => b.envelope.seq[1]),
      rows.map((b) => b.stored.count),
      rows.map((b) => inserted.get(b.seq) ?? 0),
      summaries.map((s) => s.timeMin),
      summaries.map((s) => s.timeMax),
      summaries.map((s) => JSON.stringify(s.traces)),
    ],
  );
}
