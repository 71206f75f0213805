import {
  type DataAvailable,
  decodeMessage,
  edgeOfObsSubject,
  ObservationBatch,
  streams,
  subjects,
} from '@fieldbeam/protocol';
import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import type { CloudMetrics } from '../metrics.js';
import { ensureDurable, keepWorking, pullSome } from '../nats/pull.js';
import { fastValidBatch } from './fast-validate.js';
import type { DeadLetter, ObservationStore } from './observation-store.js';

export interface IngestOptions {
  consumer: string;
  /** Messages fetched per round, committed in one transaction. */
  fetch: number;
  /** Rounds committing at once, on separate connections (default 2: Postgres can use two cores). */
  parallel?: number;
}

export interface Ingest {
  close(): Promise<void>;
}

interface Accepted {
  msg: JsMsg;
  batch: ObservationBatch;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A fetched round is committed within a second or two; `working()` extends it while Postgres is slow.
 * A collector that dies holding a round hands it on after this long.
 */
const INGEST_ACK_WAIT_MS = 15_000;

/**
 * Checks one message; a failure carries the reason that goes to the dead-letter table. The common
 * case takes the fast hand-written check; anything it does not pass goes through the zod schema,
 * which has the last word and says what is wrong.
 */
export function checkBatch(
  subject: string,
  data: Uint8Array,
): { ok: true; batch: ObservationBatch } | { ok: false; reason: string } {
  const edge = edgeOfObsSubject(subject);
  if (!edge) return { ok: false, reason: `subject ${subject} is not fb.obs.<edge>` };
  let batch: ObservationBatch | undefined;
  try {
    const raw: unknown = JSON.parse(utf8.decode(data));
    if (fastValidBatch(raw)) batch = raw as ObservationBatch;
  } catch {
    // Not UTF-8 or not JSON: decodeMessage below says which.
  }
  if (!batch) {
    const checked = decodeMessage(ObservationBatch, data);
    if (!checked.ok) return checked;
    batch = checked.value;
  }
  if (batch.edge !== edge) {
    return { ok: false, reason: `batch claims edge "${batch.edge}" but was published on ${subject}` };
  }
  return { ok: true, batch };
}

function summary(batch: ObservationBatch, inserted: number, streamSeq: number): DataAvailable {
  let start = batch.observations[0]?.time ?? batch.sent;
  let end = start;
  const stations = new Set<string>();
  const sources = new Set<string>();
  const variables = new Set<string>();
  for (const o of batch.observations) {
    if (o.time < start) start = o.time;
    if (o.time > end) end = o.time;
    stations.add(o.station);
    sources.add(o.source);
    variables.add(o.variable);
  }
  return {
    v: 1,
    source: [...sources],
    edge: batch.edge,
    stations: [...stations],
    variables: [...variables],
    start,
    end,
    count: batch.observations.length,
    inserted,
    batch: `${streams.OBS.name}:${streamSeq}`,
  };
}

interface Round {
  msgs: JsMsg[];
  accepted: Accepted[];
  dead: DeadLetter[];
}

/**
 * Durable pull consumer on the OBS stream. Every message is validated; good batches are committed to
 * Postgres together with the dead letters of that round, and only then acknowledged. A database
 * failure naks the round for redelivery; nothing is acked that is not committed. The next round is
 * fetched and validated while earlier ones commit (up to `parallel` at once), so Node's parsing
 * overlaps Postgres' work.
 */
export async function startIngest(
  deps: {
    js: JetStreamClient;
    jsm: JetStreamManager;
    store: ObservationStore;
    log: Logger;
    metrics: CloudMetrics;
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
  const encoder = new TextEncoder();
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function fetchRound(): Promise<Round | undefined> {
    const { msgs, failed } = await pullSome(consumer, opts.fetch, log, { consumer: opts.consumer });
    if (msgs.length === 0) {
      if (failed && !abort.signal.aborted) await pause(1000);
      return undefined;
    }
    const accepted: Accepted[] = [];
    const dead: DeadLetter[] = [];
    for (const msg of msgs) {
      const checked = checkBatch(msg.subject, msg.data);
      if (checked.ok) accepted.push({ msg, batch: checked.batch });
      else {
        dead.push({
          subject: msg.subject,
          streamSeq: msg.seq,
          reason: checked.reason,
          payload: msg.data.subarray(0, 64 * 1024),
        });
        log.warn(
          { subject: msg.subject, seq: msg.seq, reason: checked.reason },
          'batch rejected to dead letters',
        );
      }
    }
    return { msgs, accepted, dead };
  }

  async function commitRound({ msgs, accepted, dead }: Round): Promise<void> {
    let result: Awaited<ReturnType<ObservationStore['commit']>>;
    const timer = metrics.ingestCommitSeconds.startTimer();
    const stopWorking = keepWorking(msgs, INGEST_ACK_WAIT_MS);
    try {
      result = await store.commit(
        accepted.map((a) => ({ seq: a.msg.seq, observations: a.batch.observations })),
        dead,
      );
    } catch (err) {
      log.error(
        { err: (err as Error).message, messages: msgs.length },
        'commit failed; messages will be redelivered',
      );
      metrics.ingestErrors.inc();
      stopWorking();
      for (const m of msgs) m.nak(2000);
      await pause(1000);
      return;
    }
    timer();
    metrics.ingestRounds.inc({ path: result.path });
    let observations = 0;
    for (const a of accepted) observations += a.batch.observations.length;
    metrics.observations.inc(observations);
    metrics.inserted.inc(result.inserted);
    metrics.deadLetters.inc(dead.length);
    // Each committed batch is announced before it is acknowledged: if the announcement fails, the
    // batch comes back, is found already stored (inserted 0) and announced then, so the coordinator
    // never misses data. The stream sequence is the message id, so a repeat within the duplicate
    // window is dropped. This runs beside the next round rather than holding it up.
    const announced = accepted.map((a) => {
      const event = summary(a.batch, result.perBatch.get(a.msg.seq) ?? 0, a.msg.seq);
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
  })();

  return {
    async close() {
      abort.abort();
      await loop;
    },
  };
}
