import {
  type DataAvailable,
  decodeMessage,
  edgeOfObsSubject,
  type Observation,
  ObservationBatch,
  streams,
  subjects,
} from '@fieldbeam/protocol';
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { CloudMetrics } from '../metrics.js';
import type { DeadLetter, ObservationStore } from './observation-store.js';

export interface IngestOptions {
  consumer: string;
  /** Messages fetched per round, committed in one transaction. */
  fetch: number;
}

export interface Ingest {
  close(): Promise<void>;
}

interface Accepted {
  msg: JsMsg;
  batch: ObservationBatch;
}

/** Checks one message; a failure carries the reason that goes to the dead-letter table. */
export function checkBatch(
  subject: string,
  data: Uint8Array,
): { ok: true; batch: ObservationBatch } | { ok: false; reason: string } {
  const edge = edgeOfObsSubject(subject);
  if (!edge) return { ok: false, reason: `subject ${subject} is not fb.obs.<edge>` };
  const checked = decodeMessage(ObservationBatch, data);
  if (!checked.ok) return checked;
  if (checked.value.edge !== edge) {
    return { ok: false, reason: `batch claims edge "${checked.value.edge}" but was published on ${subject}` };
  }
  return { ok: true, batch: checked.value };
}

function summary(batch: ObservationBatch, inserted: number, streamSeq: number): DataAvailable {
  let start = batch.observations[0]?.time ?? batch.sent;
  let end = start;
  const stations = new Set<string>();
  const sources = new Set<string>();
  for (const o of batch.observations) {
    if (o.time < start) start = o.time;
    if (o.time > end) end = o.time;
    stations.add(o.station);
    sources.add(o.source);
  }
  return {
    v: 1,
    source: [...sources],
    edge: batch.edge,
    stations: [...stations],
    start,
    end,
    count: batch.observations.length,
    inserted,
    batch: `${streams.OBS.name}:${streamSeq}`,
  };
}

/**
 * Durable pull consumer on the OBS stream. Every message is validated; good batches are committed to
 * Postgres together with the dead letters of that round, and only then acknowledged. A database
 * failure naks the round for redelivery; nothing is acked that is not committed.
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
  try {
    await jsm.consumers.info(streams.OBS.name, opts.consumer);
  } catch {
    await jsm.consumers.add(streams.OBS.name, {
      durable_name: opts.consumer,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(60_000),
      max_ack_pending: 10_000,
    });
  }
  const consumer = await js.consumers.get(streams.OBS.name, opts.consumer);
  const abort = new AbortController();
  const encoder = new TextEncoder();

  async function round(): Promise<void> {
    const iter = await consumer.fetch({ max_messages: opts.fetch, expires: 1000 });
    const msgs: JsMsg[] = [];
    for await (const m of iter) msgs.push(m);
    if (msgs.length === 0) return;
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
    const observations: Observation[] = accepted.flatMap((a) => a.batch.observations);
    let inserted: number;
    try {
      inserted = await store.commit(observations, dead);
    } catch (err) {
      log.error(
        { err: (err as Error).message, messages: msgs.length },
        'commit failed; messages will be redelivered',
      );
      metrics.ingestErrors.inc();
      for (const m of msgs) m.nak(2000);
      await new Promise((r) => setTimeout(r, 1000));
      return;
    }
    for (const m of msgs) m.ack();
    metrics.observations.inc(observations.length);
    metrics.inserted.inc(inserted);
    metrics.deadLetters.inc(dead.length);
    // Events go out after the commit and carry the stream sequence as message id, so a redelivered
    // batch does not announce the same data twice within the duplicate window.
    // The per-batch `inserted` is shared out in order; only the total is exact.
    let left = inserted;
    for (const a of accepted) {
      const share = Math.min(left, a.batch.observations.length);
      left -= share;
      const event = summary(a.batch, share, a.msg.seq);
      js.publish(subjects.dataAvailable, encoder.encode(JSON.stringify(event)), { msgID: event.batch }).catch(
        (err: Error) => log.warn({ err: err.message }, 'DataAvailable publish failed'),
      );
    }
  }

  const loop = (async () => {
    while (!abort.signal.aborted) {
      try {
        await round();
      } catch (err) {
        if (abort.signal.aborted) break;
        log.warn({ err: (err as Error).message }, 'ingest fetch failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();

  return {
    async close() {
      abort.abort();
      await loop;
    },
  };
}
