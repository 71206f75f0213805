import { edgeOfObsSubject, isBatchV2, type ObservationBatch } from '@fieldbeam/protocol';
import { type BatchTraces, batchTraces } from '../db/ingest-batches.js';
import { checkBatch, type RejectedObservation, type TimeWindow } from './batch-check.js';
import { type EncodedRows, RowWriter } from './copy-binary.js';
import { v2Rows } from './v2-rows.js';

/** What a `DataAvailable` event says of a batch's good observations. */
export interface BatchSummary {
  count: number;
  start: string;
  end: string;
  stations: string[];
  sources: string[];
  variables: string[];
}

/** A batch's envelope without its observations (what completeness and announcements need). */
export type BatchHead = Omit<ObservationBatch, 'observations'>;

/**
 * One message made ready to commit: checked (see `checkBatch`), its good observations encoded as
 * binary COPY rows and summed up, its bad ones listed for a dead letter. Plain data (typed arrays,
 * strings, numbers), so it crosses from a decode thread without a copy of the rows.
 */
export type DecodedMessage =
  | { ok: false; reason: string }
  | {
      ok: true;
      head: BatchHead;
      rows: EncodedRows;
      summary: BatchSummary;
      /** What `ingest_batches` records of it (trace-ids, time range). */
      stored: BatchTraces;
      rejected: RejectedObservation[];
    };

/** Decodes, validates and encodes one message; the work a decode thread does, or the main thread with none. */
export function decodeForCommit(
  subject: string,
  data: Uint8Array,
  window: TimeWindow,
  writer = new RowWriter(),
): DecodedMessage {
  // What edges send: a v2 batch of good readings goes from its columns to rows (v2-rows.ts).
  const edge = isBatchV2(data) ? edgeOfObsSubject(subject) : undefined;
  const plain = edge === undefined ? undefined : v2Rows(data, edge, window, writer);
  return plain ?? decodeObjects(subject, data, window, writer);
}

/**
 * The general path: the message as observation objects, each checked (`checkBatch`), the good ones
 * encoded. Every message the plain v2 path does not take comes here.
 */
export function decodeObjects(
  subject: string,
  data: Uint8Array,
  window: TimeWindow,
  writer = new RowWriter(),
): DecodedMessage {
  const checked = checkBatch(subject, data, window);
  if (!checked.ok) return checked;
  const { observations, ...head } = checked.batch;
  let start = observations[0]?.time ?? head.sent;
  let end = start;
  const stations = new Set<string>();
  const sources = new Set<string>();
  const variables = new Set<string>();
  for (const o of observations) {
    if (o.time < start) start = o.time;
    if (o.time > end) end = o.time;
    stations.add(o.station);
    sources.add(o.source);
    variables.add(o.variable);
    writer.write(o);
  }
  return {
    ok: true,
    head,
    rows: writer.take(),
    summary: {
      count: observations.length,
      start,
      end,
      stations: [...stations],
      sources: [...sources],
      variables: [...variables],
    },
    stored: batchTraces(observations),
    rejected: checked.rejected,
  };
}
