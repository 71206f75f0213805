import { type AcceptedTimeRange, type DataAvailable, streams, subjects } from '@fieldbeam/protocol';
import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { BatchTraces } from '../db/ingest-batches.js';
import { CloudError, CloudErrorCode } from '../errors.js';
import { type CompletenessTracker, roundSpans, type SeqSpan } from '../fleet/completeness.js';
import type { CloudMetrics } from '../metrics.js';
import { ensureDurable, keepWorking, pullSome } from '../nats/pull.js';
import { type RejectedObservation, type RejectKind, type TimeWindow, timeWindow } from './batch-check.js';
import { type EncodedRows, rowCount, rowObservation, sliceRows } from './copy-binary.js';
import { type BatchHead, type BatchSummary, type DecodedMessage, decodeForCommit } from './decode-batch.js';
import { DecodeInterrupted, type Decoder, DecodeThreadDied, startDecoder } from './decode-pool.js';
import { fetchSize } from './fetch-size.js';
import { isolateFailures } from './isolate.js';
import {
  type CommitResult,
  type DeadLetter,
  type ObservationStore,
  rowsOf,
  type StagedBatch,
} from './observation-store.js';

export { checkBatch } from './batch-check.js';

/**
 * Observation times the collector accepts by default: a year back (an edge that was cut off for
 * months still delivers its buffer) and an hour ahead (clock drift). Outside it an observation is
 * dead-lettered and never creates a partition.
 */
export const DEFAULT_ACCEPTED_TIME: AcceptedTimeRange = {
  maxAgeMs: 366 * 86_400_000,
  maxFutureMs: 3_600_000,
};

export interface IngestOptions {
  consumer: string;
  /** Messages fetched per round, committed in one transaction. */
  fetch: number;
  /** Rounds committing at once, on separate connections (default 2: Postgres can use two cores). */
  parallel?: number;
  /** Observation times accepted, around the collector's clock; default {@link DEFAULT_ACCEPTED_TIME}. */
  acceptedTime?: AcceptedTimeRange;
  /**
   * Threads that decode, validate and encode batches (default {@link DEFAULT_DECODE_THREADS}); 0
   * keeps that work on the main thread.
   */
  decodeThreads?: number;
  /** The decode threads' program instead of the collector's own (tests make threads that die). */
  decodeScript?: string | URL;
}

/** Decode threads by default: with two, decoding keeps up with what Postgres stores on a small box. */
export const DEFAULT_DECODE_THREADS = 2;

export interface Ingest {
  close(): Promise<void>;
}

/** A message whose envelope was usable: its good observations as rows, ready to commit. */
interface Accepted {
  msg: JsMsg;
  head: BatchHead;
  rows: EncodedRows;
  summary: BatchSummary;
  stored: BatchTraces;
  /** Its rows Postgres refused and that went to dead letters (see `commitIsolating`). */
  guilty: number;
}

/**
 * Why something was set aside, as the dead-letter metric's `reason`: a validation kind, or `decode`
 * (decoding the message failed, or ended a decode thread, on every delivery up to
 * {@link DECODE_DELIVERIES} and once more on the main thread).
 */
type DeadKind = RejectKind | 'decode';

/** A dead letter with why each thing in it was set aside, for the metric. */
interface Rejection extends DeadLetter {
  kinds: DeadKind[];
  /** The trace-id of the observation set aside, for the log line. */
  trace?: string | undefined;
}

/** The trace-id an observation (valid or not) carries, for log lines about it. */
function traceOf(o: unknown): string | undefined {
  const t = typeof o === 'object' && o !== null ? (o as { trace?: unknown }).trace : undefined;
  return typeof t === 'string' ? t.slice(0, 64) : undefined;
}

/** Reasons spelled out in one dead letter; the rest are counted. */
const MAX_REASONS = 20;

/**
 * The observations of one message set aside by validation, as one dead letter: a hostile edge sending
 * 500 bad observations per message costs one row and one insert, as a bad message does.
 */
function observationsDeadLetter(msg: JsMsg, rejected: readonly RejectedObservation[]): Rejection {
  const reasons = rejected.slice(0, MAX_REASONS).map((r) => r.reason);
  const more = rejected.length > MAX_REASONS ? ` (+${rejected.length - MAX_REASONS} more)` : '';
  return {
    kinds: rejected.map((r) => r.kind),
    subject: msg.subject,
    streamSeq: msg.seq,
    reason:
      rejected.length === 1
        ? (reasons[0] ?? '')
        : `${rejected.length} observations set aside: ${reasons.join('; ')}${more}`,
    payload: encoder.encode(JSON.stringify(rejected.map((r) => r.observation))),
  };
}

/**
 * A fetched round is committed within a second or two; `working()` extends it while Postgres is slow.
 * A collector that dies holding a round hands it on after this long.
 */
const INGEST_ACK_WAIT_MS = 15_000;

const encoder = new TextEncoder();

/**
 * Deliveries of a message whose decoding fails (it ends a decode thread, or throws) before it gets one
 * last try on the main thread and, failing that too, becomes a dead letter: a message that breaks the
 * decoder is never redelivered for ever, and a thread that died of something else has had its chances.
 */
export const DECODE_DELIVERIES = 3;

/** Tries of a message whose thread ended while decoding others, before it is handed back (nak). */
const DECODE_TRIES = 3;

/**
 * Decodes one message whose first decoding failed. One that only waited on a thread that ended is
 * decoded again at once (on another thread, or here while none runs). One whose decoding failed
 * itself is handed back for redelivery, alone, until its {@link DECODE_DELIVERIES}th delivery; then it
 * is decoded on the main thread once, and if that fails too it becomes a dead letter. Returns
 * `undefined` for a message handed back.
 */
async function decodeAgain(
  decoder: Decoder,
  msg: JsMsg,
  window: TimeWindow,
  first: unknown,
  log: Logger,
): Promise<{ decoded: DecodedMessage } | { dead: Rejection } | undefined> {
  let err = first;
  for (let i = 0; i < DECODE_TRIES && err instanceof DecodeInterrupted; i++) {
    try {
      return { decoded: await decoder.decode(msg.subject, msg.data, window) };
    } catch (e) {
      err = e;
    }
  }
  const why = (err as Error).message ?? String(err);
  const deliveries = msg.info.deliveryCount;
  if (err instanceof DecodeInterrupted || deliveries < DECODE_DELIVERIES) {
    log.warn(
      { subject: msg.subject, seq: msg.seq, deliveries, err: why },
      'decoding a message failed; it alone will be redelivered',
    );
    msg.nak(1000 * deliveries);
    return undefined;
  }
  // The last check, here: a thread may have died of something else than this message. Not for one
  // that ran a thread out of memory: here it would take the collector with it.
  let reason: string;
  try {
    if (err instanceof DecodeThreadDied && err.outOfMemory)
      throw new Error('not tried, as it ran the decode thread out of memory');
    const decoded = decodeForCommit(msg.subject, msg.data, window);
    if (decoded.ok) return { decoded };
    reason = `decoding failed on ${deliveries} deliveries (${why}); on the main thread: ${decoded.reason}`;
  } catch (e) {
    reason = `decoding failed on ${deliveries} deliveries (${why}) and on the main thread: ${(e as Error).message}`;
  }
  return {
    dead: {
      kinds: ['decode'],
      subject: msg.subject,
      streamSeq: msg.seq,
      reason,
      payload: msg.data.subarray(0, 64 * 1024),
    },
  };
}

const isDataRefused = (err: unknown) => err instanceof CloudError && err.code === CloudErrorCode.DATA_REFUSED;

/**
 * Commits a round Postgres refused for its data (a case validation did not foresee): the batches are
 * halved until the guilty ones stand alone, then each guilty batch's observations likewise, and every
 * part that passes is committed on the way. What is left are single observations Postgres refuses;
 * they become dead letters with its message. Every commit is idempotent, so a retryable failure
 * (thrown) leaves nothing that a redelivery would not redo correctly.
 */
async function commitIsolating(
  store: ObservationStore,
  batches: readonly StagedBatch[],
  refused: unknown,
  subjectOf: (seq: number) => string,
): Promise<{ perBatch: Map<number, number>; guilty: Map<number, number>; dead: Rejection[] }> {
  const perBatch = new Map<number, number>();
  const add = (r: CommitResult) => {
    for (const [seq, n] of r.perBatch) perBatch.set(seq, (perBatch.get(seq) ?? 0) + n);
  };
  const guilty = new Map<number, number>();
  const dead: Rejection[] = [];
  const badBatches = await isolateFailures(
    batches,
    async (part) => add(await store.commit(part, [])),
    isDataRefused,
    refused,
  );
  for (const { item: batch, error } of badBatches) {
    const rows = rowsOf(batch);
    // Row numbers: every part `isolateFailures` tries is a run of consecutive rows.
    const numbers = Array.from({ length: rowCount(rows) }, (_, i) => i);
    const culprits = await isolateFailures(
      numbers,
      async (part) => {
        const from = part[0] ?? 0;
        const rowsPart = sliceRows(rows, from, from + part.length);
        add(await store.commit([{ seq: batch.seq, rows: rowsPart }], []));
      },
      isDataRefused,
      numbers.length === 1 ? error : undefined,
    );
    for (const { item, error: why } of culprits) {
      const o = rowObservation(rows, item);
      guilty.set(batch.seq, (guilty.get(batch.seq) ?? 0) + 1);
      dead.push({
        kinds: ['database'],
        subject: subjectOf(batch.seq),
        streamSeq: batch.seq,
        reason: `observation ${String(o.id)}: ${(why as Error).message}`,
        payload: encoder.encode(JSON.stringify(o)),
        trace: traceOf(o),
      });
    }
  }
  return { perBatch, guilty, dead };
}

/** The announcement of a committed batch's good observations. */
function announcement(a: Accepted, inserted: number): DataAvailable {
  const s = a.summary;
  return {
    v: 1,
    source: s.sources,
    edge: a.head.edge,
    stations: s.stations,
    variables: s.variables,
    start: s.start,
    end: s.end,
    count: s.count - a.guilty,
    inserted,
    batch: `${streams.OBS.name}:${a.msg.seq}`,
  };
}

interface Round {
  msgs: JsMsg[];
  accepted: Accepted[];
  dead: Rejection[];
}

/**
 * Durable pull consumer on the OBS stream. Every message is validated: an unusable message goes to
 * dead letters whole, an unusable observation alone (the rest of its batch is kept). Good batches are
 * committed to Postgres together with the dead letters of that round, and only then acknowledged. If
 * Postgres refuses the data itself, the guilty observations are isolated and dead-lettered and the
 * rest committed; any other database failure naks the round for redelivery. Nothing is acked that is
 * not committed. The next round is fetched and validated while earlier ones commit (up to `parallel`
 * at once), so Node's parsing overlaps Postgres' work.
 */
export async function startIngest(
  deps: {
    js: JetStreamClient;
    jsm: JetStreamManager;
    store: ObservationStore;
    log: Logger;
    metrics: CloudMetrics;
    /** Told about each committed round's sequence spans (completeness). */
    completeness?: CompletenessTracker;
  },
  opts: IngestOptions,
): Promise<Ingest> {
  const { js, jsm, store, log, metrics } = deps;
  const consumer = await ensureDurable(js, jsm, {
    stream: streams.OBS.name,
    durable: opts.consumer,
    ackWaitMs: INGEST_ACK_WAIT_MS,
  });
  const abort = new AbortController();
  const acceptedTime = opts.acceptedTime ?? DEFAULT_ACCEPTED_TIME;
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const decoder = startDecoder(opts.decodeThreads ?? DEFAULT_DECODE_THREADS, {
    onThreadEnd: (err) => log.error({ err: err.message }, 'a decode thread ended'),
    ...(opts.decodeScript ? { script: opts.decodeScript } : {}),
  });

  /** Messages the consumer still held after the last fetch (its last message says); see `fetchSize`. */
  let waiting: number | undefined;

  async function fetchRound(): Promise<Round | undefined> {
    // Each message goes to a decode thread as it arrives, so decoding overlaps the rest of the fetch.
    const window = timeWindow(Date.now(), acceptedTime);
    const decoding: Promise<DecodedMessage>[] = [];
    const { msgs, failed } = await pullSome(
      consumer,
      fetchSize(opts.fetch, waiting),
      log,
      { consumer: opts.consumer },
      (m) => {
        const p = decoder.decode(m.subject, m.data, window);
        p.catch(() => {}); // handled below, with the rest of the round
        decoding.push(p);
      },
    );
    waiting = msgs.at(-1)?.info.pending;
    if (msgs.length === 0) {
      if (failed && !abort.signal.aborted) await pause(1000);
      return undefined;
    }
    // A decoding that failed fails only its own message: the others of the round go on.
    const settled = await Promise.allSettled(decoding);
    const kept: JsMsg[] = [];
    /** Each kept message's decoding; `undefined` for one already set aside whole. */
    const decoded: (DecodedMessage | undefined)[] = [];
    const dead: Rejection[] = [];
    for (const [i, msg] of msgs.entries()) {
      const s = settled[i] as PromiseSettledResult<DecodedMessage>;
      if (s.status === 'fulfilled') {
        kept.push(msg);
        decoded.push(s.value);
        continue;
      }
      const again = await decodeAgain(decoder, msg, window, s.reason, log);
      if (!again) {
        metrics.ingestErrors.inc();
        continue;
      }
      kept.push(msg);
      if ('decoded' in again) decoded.push(again.decoded);
      else {
        dead.push(again.dead);
        decoded.push(undefined);
        log.error(
          { subject: msg.subject, seq: msg.seq, reason: again.dead.reason },
          'message set aside to dead letters: decoding it failed on every try',
        );
      }
    }
    if (kept.length === 0) return undefined;
    const accepted: Accepted[] = [];
    kept.forEach((msg, i) => {
      const checked = decoded[i];
      if (!checked) return;
      if (!checked.ok) {
        dead.push({
          kinds: ['message'],
          subject: msg.subject,
          streamSeq: msg.seq,
          reason: checked.reason,
          payload: msg.data.subarray(0, 64 * 1024),
        });
        log.warn(
          { subject: msg.subject, seq: msg.seq, reason: checked.reason },
          'batch rejected to dead letters',
        );
        return;
      }
      const { head, rows, summary, stored } = checked;
      accepted.push({ msg, head, rows, summary, stored, guilty: 0 });
      if (checked.rejected.length > 0) {
        dead.push(observationsDeadLetter(msg, checked.rejected));
        log.warn(
          {
            subject: msg.subject,
            seq: msg.seq,
            rejected: checked.rejected.length,
            reason: checked.rejected[0]?.reason,
            trace_id: traceOf(checked.rejected[0]?.observation),
          },
          'observations rejected to dead letters; the rest of the batch is kept',
        );
      }
    });
    return { msgs: kept, accepted, dead };
  }

  /** Commits the round; when Postgres refuses some of its data, isolates it and commits the rest. */
  async function commitData(
    round: Round,
    spans: readonly SeqSpan[],
  ): Promise<CommitResult & { dead: Rejection[]; isolated: boolean }> {
    const batches: StagedBatch[] = round.accepted.map((a) => ({
      seq: a.msg.seq,
      rows: a.rows,
      envelope: a.head,
      stored: a.stored,
    }));
    try {
      return { ...(await store.commit(batches, round.dead, spans)), dead: round.dead, isolated: false };
    } catch (err) {
      if (!isDataRefused(err)) throw err;
      log.warn({ err: (err as Error).message }, 'Postgres refused data in a round; isolating it');
      const subjects = new Map(round.msgs.map((m) => [m.seq, m.subject]));
      const isolated = await commitIsolating(store, batches, err, (seq) => subjects.get(seq) ?? '');
      for (const d of isolated.dead)
        log.warn(
          { seq: d.streamSeq, reason: d.reason, trace_id: d.trace },
          'observation rejected to dead letters',
        );
      const dead = [...round.dead, ...isolated.dead];
      await store.commit([], dead, spans);
      for (const a of round.accepted) a.guilty = isolated.guilty.get(a.msg.seq) ?? 0;
      let inserted = 0;
      for (const n of isolated.perBatch.values()) inserted += n;
      return { inserted, perBatch: isolated.perBatch, path: 'replay', dead, isolated: true };
    }
  }

  async function commitRound(round: Round): Promise<void> {
    const { msgs, accepted } = round;
    let result: Awaited<ReturnType<typeof commitData>>;
    const timer = metrics.ingestCommitSeconds.startTimer();
    const stopWorking = keepWorking(msgs, INGEST_ACK_WAIT_MS);
    // Every batch that arrived whole enough to read its envelope, whatever became of its observations.
    const spans = roundSpans(accepted.map((a) => a.head));
    try {
      result = await commitData(round, spans);
    } catch (err) {
      log.error(
        { err: (err as Error).message, code: (err as CloudError).code, messages: msgs.length },
        'commit failed; messages will be redelivered',
      );
      metrics.ingestErrors.inc();
      stopWorking();
      for (const m of msgs) m.nak(2000);
      await pause(1000);
      return;
    }
    timer();
    deps.completeness?.committed(spans);
    metrics.ingestRounds.inc({ path: result.isolated ? 'isolated' : result.path });
    let observations = 0;
    for (const a of accepted) observations += a.summary.count - a.guilty;
    metrics.observations.inc(observations);
    metrics.inserted.inc(result.inserted);
    for (const d of result.dead) for (const kind of d.kinds) metrics.deadLetters.inc({ reason: kind });
    // Each committed batch is announced before it is acknowledged: if the announcement fails, the
    // batch comes back, is found already stored (inserted 0) and announced then, so the coordinator
    // never misses data. The stream sequence is the message id, so a repeat within the duplicate
    // window is dropped. This runs beside the next round rather than holding it up. A batch left with
    // no good observation has nothing to announce.
    const announced = accepted
      .filter((a) => a.summary.count - a.guilty > 0)
      .map((a) => {
        const event = announcement(a, result.perBatch.get(a.msg.seq) ?? 0);
        return js.publish(subjects.dataAvailable, encoder.encode(JSON.stringify(event)), {
          msgID: event.batch,
        });
      });
    void Promise.all(announced).then(
      () => {
        stopWorking();
        for (const m of msgs) m.ack();
      },
      (err: Error) => {
        stopWorking();
        log.warn({ err: err.message }, 'DataAvailable publish failed; the batch will be redelivered');
        for (const m of msgs) m.nak(1000);
      },
    );
  }

  const parallel = Math.max(1, opts.parallel ?? 2);
  const loop = (async () => {
    const committing = new Set<Promise<void>>();
    let next = fetchRound();
    while (!abort.signal.aborted) {
      const round = await next;
      next = abort.signal.aborted ? Promise.resolve(undefined) : fetchRound();
      if (!round) continue;
      // Rounds are independent (idempotent rows, per-message acks), so they may commit side by side.
      const p: Promise<void> = commitRound(round).finally(() => committing.delete(p));
      committing.add(p);
      if (committing.size >= parallel) await Promise.race(committing);
    }
    await Promise.all(committing);
    // A round fetched while stopping is handed back for another collector (or the next start).
    for (const m of (await next)?.msgs ?? []) m.nak();
  })().finally(() => decoder.close());

  return {
    async close() {
      abort.abort();
      await loop;
    },
  };
}
