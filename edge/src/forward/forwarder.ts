import { randomBytes } from 'node:crypto';
import {
  type BatchEncoding,
  type BatchHead,
  batchLimits,
  batchMsgId,
  batchV2Limits,
  encodeBatchV2,
  subjects,
} from '@fieldbeam/protocol';
import { EdgeError, EdgeErrorCode } from '../errors.js';
import type { OutboxBatch, OutboxQueue } from '../outbox/outbox.js';
import type { Publisher } from './publisher.js';

export interface ForwarderOptions {
  edge: string;
  /**
   * How batches are written (`nats.encoding`): v1 JSON or v2 columns compressed. Default v1. A v2 batch
   * is cut at `v2BatchObservations` and at `batchV2Limits.maxRowBytes` of stored JSON, which keeps its
   * message below `batchV2Limits.maxBytes` whatever the readings; `maxBatch*` cut v1 batches.
   */
  encoding?: BatchEncoding;
  v2BatchObservations?: number;
  maxBatchObservations: number;
  maxBatchBytes: number;
  /** Batches awaiting their PubAck at once. */
  maxInFlight: number;
  /** Longest pause before looking at the buffer again when nothing wakes the forwarder. */
  idleMs: number;
  backoff: { initialMs: number; maxMs: number };
  /** The secret random part of each batch's message id (tests make it predictable). */
  nonce?: () => string;
}

export const defaultForwarderOptions = {
  maxBatchObservations: batchLimits.maxObservations,
  // Leave room for the batch envelope around the observations.
  maxBatchBytes: batchLimits.maxBytes - 1024,
  maxInFlight: 8,
  idleMs: 250,
  backoff: { initialMs: 200, maxMs: 30_000 },
} as const;

export interface ForwarderEvents {
  onSent?: (batch: OutboxBatch, duplicate: boolean) => void;
  onError?: (err: unknown, attempt: number, retryInMs: number) => void;
  /**
   * JetStream called a batch a duplicate on its first publish: another publisher used its message id
   * (it is sent again under a new one, not deleted).
   */
  onUnexpectedDuplicate?: (batch: OutboxBatch, msgId: string) => void;
}

export interface Forwarder {
  readonly sentObservations: number;
  readonly failures: number;
  /** Batches acknowledged as duplicates on their first publish (see `onUnexpectedDuplicate`). */
  readonly unexpectedDuplicates: number;
  /** Stops taking new batches, waits for those in flight, and returns. Idempotent. */
  close(): Promise<void>;
}

/**
 * A batch's fields other than its observations. With `buffer`, it says which buffer file its sequence
 * numbers belong to, and carries the drops not yet reported, for the collector's account.
 */
function batchHead(
  edge: string,
  batch: OutboxBatch,
  sentMs: number,
  buffer: { id: string; start: number } | undefined,
): BatchHead {
  return {
    edge,
    seq: [batch.first, batch.last],
    sent: new Date(sentMs).toISOString(),
    ...(buffer
      ? { buffer: { ...buffer, ...(batch.dropped?.length ? { dropped: batch.dropped } : {}) } }
      : {}),
  };
}

/**
 * The v1 `ObservationBatch` message of a batch, its stored observation texts spliced in unchanged
 * (each already is the JSON of a valid observation).
 */
export function batchMessage(
  edge: string,
  batch: OutboxBatch,
  sentMs = Date.now(),
  buffer?: { id: string; start: number },
): string {
  const head = JSON.stringify({ v: 1, ...batchHead(edge, batch, sentMs, buffer) });
  return `${head.slice(0, -1)},"observations":[${batch.rows.join(',')}]}`;
}

const textEncoder = new TextEncoder();

/** The message of a batch in the given encoding (v2: see `encodeBatchV2` in the protocol). */
export function encodeBatch(
  encoding: BatchEncoding,
  edge: string,
  batch: OutboxBatch,
  sentMs = Date.now(),
  buffer?: { id: string; start: number },
): Uint8Array {
  if (encoding === 'v2') return encodeBatchV2(batchHead(edge, batch, sentMs, buffer), batch.rows);
  return textEncoder.encode(batchMessage(edge, batch, sentMs, buffer));
}

/** Full jitter: a random wait in [0, min(max, initial * 2^attempt)], so a fleet does not reconnect in step. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(random() * cap);
}

/** 128 random bits: a message id nobody else can predict. */
const randomNonce = () => randomBytes(16).toString('base64url');

/** A batch taken from the outbox and not yet acknowledged. */
interface Pending {
  batch: OutboxBatch;
  /** Fixed for the batch's resends, so JetStream drops a repeat whose first copy was stored. */
  msgId: string;
  /** A publish under `msgId` has been attempted: the stream may hold it even if no ack came back. */
  attempted: boolean;
}

/**
 * Moves the outbox to the uplink: oldest rows first, in bounded batches, a bounded number in
 * flight. Rows are deleted only after their PubAck. After a failure the unacknowledged batches are
 * sent again, unchanged, after a backoff with jitter. Only what is in flight is held in memory; the
 * backlog stays on disk. A batch repeated after a restart of the agent gets new boundaries, and
 * the collector drops its repeats by observation id.
 *
 * Message ids: JetStream de-duplicates per stream, across every edge's subject, so an id another
 * edge could learn or predict would let it publish that id first and have this batch acknowledged as
 * a duplicate and dropped. Each batch's id therefore carries a random nonce made when the batch is
 * taken, known only to this process until the batch is published (the stream is read only by the
 * collector, whose deliveries no edge can subscribe to). As a second line, a duplicate ack on a
 * batch's first publish cannot be genuine: it is reported and the batch is published again under a
 * new id, never deleted unstored. On a resend the stream may hold the earlier attempt, so a
 * duplicate is expected there.
 */
export function startForwarder(
  outbox: OutboxQueue,
  publisher: Publisher,
  opts: ForwarderOptions,
  events: ForwarderEvents = {},
): Forwarder {
  const abort = new AbortController();
  const subject = subjects.obs(opts.edge);
  const encoding = opts.encoding ?? 'v1';
  const [takeCount, takeBytes] =
    encoding === 'v2'
      ? [opts.v2BatchObservations ?? batchV2Limits.maxObservations, batchV2Limits.maxRowBytes]
      : [opts.maxBatchObservations, opts.maxBatchBytes];
  const nonce = opts.nonce ?? randomNonce;
  const newMsgId = (b: OutboxBatch) => batchMsgId(opts.edge, nonce(), b.first, b.last);
  const buffer = { id: outbox.bufferId, start: outbox.bufferStart };
  let sentObservations = 0;
  let failures = 0;
  let unexpectedDuplicates = 0;

  /** Ends the wait in progress, if any (see `pause`). */
  let current: ((woken: boolean) => void) | undefined;
  /** Wake promises with a handler attached, and those of them that have settled. */
  const hooked = new WeakSet<Promise<unknown>>();
  const settled = new WeakSet<Promise<unknown>>();

  /**
   * Waits `ms`, or less when the forwarder closes or one of `wake` settles; true when a `wake` ended
   * it. The same pending promise (the next commit, a reconnect) is waited on again and again while
   * the link is quiet, so each gets one handler that ends whichever wait is current, instead of one
   * handler per wait piling up on it for as long as nothing happens.
   */
  function pause(ms: number, wake: readonly Promise<unknown>[] = []): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      if (abort.signal.aborted) return resolve(false);
      if (wake.some((w) => settled.has(w))) return resolve(true);
      const finish = (woken: boolean) => {
        if (current !== finish) return;
        current = undefined;
        clearTimeout(timer);
        abort.signal.removeEventListener('abort', onAbort);
        resolve(woken);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), ms);
      abort.signal.addEventListener('abort', onAbort, { once: true });
      current = finish;
      for (const w of wake) {
        if (hooked.has(w)) continue;
        hooked.add(w);
        const done = () => {
          settled.add(w);
          current?.(true);
        };
        w.then(done, done);
      }
    });
  }

  /** Batches published and not yet acknowledged, by first sequence number. */
  const unacked = new Map<number, Pending>();
  /** Batches to publish again, oldest first, before anything new. */
  let resend: Pending[] = [];

  function take(): Pending | undefined {
    const batch = outbox.take(takeCount, takeBytes);
    return batch && { batch, msgId: newMsgId(batch), attempted: false };
  }

  async function send(p: Pending): Promise<void> {
    const { batch } = p;
    unacked.set(batch.first, p);
    const data = encodeBatch(encoding, opts.edge, batch, Date.now(), buffer);
    let ack: { duplicate: boolean };
    for (let renamed = 0; ; renamed++) {
      const expected = p.attempted;
      p.attempted = true;
      ack = await publisher.publish(subject, data, p.msgId);
      if (!ack.duplicate || expected) break;
      unexpectedDuplicates++;
      events.onUnexpectedDuplicate?.(batch, p.msgId);
      p.msgId = newMsgId(batch);
      p.attempted = false;
      // Fresh random ids cannot all be taken: a server that keeps saying so gets the backoff.
      if (renamed >= 2) {
        throw new EdgeError(
          EdgeErrorCode.UPLINK,
          `batch ${batch.first}-${batch.last} acknowledged as a duplicate under ${renamed + 1} new message ids`,
          true,
        );
      }
    }
    outbox.ack(batch.first, batch.last);
    unacked.delete(batch.first);
    sentObservations += batch.rows.length;
    events.onSent?.(batch, ack.duplicate);
  }

  async function run(): Promise<void> {
    let attempt = 0;
    const inFlight = new Set<Promise<void>>();
    let failed: unknown;
    while (!abort.signal.aborted) {
      if (failed !== undefined) {
        // Let every outstanding publish settle, then publish the unacknowledged batches again with
        // the same boundaries, hence the same message ids: if the server did store one and only its
        // ack was lost, JetStream drops the repeat instead of storing it twice.
        await Promise.allSettled([...inFlight]);
        resend = [...unacked.values()].sort((a, b) => a.batch.first - b.batch.first);
        failures++;
        const wait = backoffMs(attempt, opts.backoff.initialMs, opts.backoff.maxMs);
        events.onError?.(failed, attempt, wait);
        attempt++;
        failed = undefined;
        // A reconnect ends the wait and the backoff: after an outage of hours the backoff sits at
        // its maximum, and the backlog should start moving when the link is back, not up to
        // `maxMs` later.
        const back = publisher.whenReconnected?.();
        if (await pause(wait, back ? [back] : [])) attempt = 0;
        continue;
      }
      if (inFlight.size >= opts.maxInFlight) {
        await Promise.race(inFlight);
        continue;
      }
      // While the uplink is down, new rows stay in the buffer (where `drop_oldest` and clock
      // re-stamping can still reach them) instead of being held here for a retry.
      const next = resend.shift() ?? (publisher.connected ? take() : undefined);
      if (!next) {
        // Wake on the next commit (or a publish settling); `idleMs` bounds the wait while the
        // uplink is down and nothing is taken.
        const wake = publisher.connected ? [outbox.whenAppended()] : [];
        await pause(opts.idleMs, [...wake, ...inFlight]);
        continue;
      }
      const p: Promise<void> = send(next).then(
        () => {
          attempt = 0;
        },
        (err: unknown) => {
          failed ??= err;
        },
      );
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await Promise.allSettled([...inFlight]);
  }

  const done = run();
  return {
    get sentObservations() {
      return sentObservations;
    },
    get failures() {
      return failures;
    },
    get unexpectedDuplicates() {
      return unexpectedDuplicates;
    },
    async close() {
      abort.abort();
      await done;
    },
  };
}
