import type { Observation } from '@fieldbeam/protocol';
import type { ObservationSink } from '../readings.js';

export interface SubmitQueueOptions {
  sink: ObservationSink;
  /**
   * Readings with the same key stand for the same channel: while the sink refuses, a newer one
   * replaces the queued one (latest value wins) instead of the queue growing without bound.
   */
  keyOf(observation: Observation): string;
  /** Observations per `submit` call. */
  maxBatch?: number;
  /** Above this the queue is collapsed to the latest value per key even while the sink accepts. */
  maxQueued?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Called on each refusal, e.g. to log it (the queue itself never throws). */
  onRefused?(error: unknown, queued: number): void;
}

export interface SubmitQueueStats {
  /** Waiting for the sink, including a batch in flight. */
  queued: number;
  /** Acknowledged by the sink (durably committed). */
  committed: number;
  /** `submit` calls the sink rejected (e.g. buffer full under the `block` policy). */
  refusals: number;
  /** Readings given up: replaced by a newer one of the same key while the sink refused, or left at close. */
  dropped: number;
}

export interface SubmitQueue {
  push(observation: Observation): void;
  stats(): SubmitQueueStats;
  /**
   * Stops retrying after one last attempt; waits for the sink until the queue is empty or
   * `timeoutMs` passes. What is still queued then is counted as dropped. Idempotent.
   */
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Hands observations to an {@link ObservationSink}, one batch in flight at a time so that order per
 * key is kept and bursts (a snapshot of every item) coalesce into one commit.
 *
 * Nothing is dropped while the sink accepts. When it refuses, the queue keeps the latest reading
 * per key and retries with backoff; every reading replaced that way is counted, never silent.
 */
export function createSubmitQueue(opts: SubmitQueueOptions): SubmitQueue {
  const maxBatch = opts.maxBatch ?? 500;
  const maxQueued = opts.maxQueued ?? 10_000;
  const retryMinMs = opts.retryMinMs ?? 250;
  const retryMaxMs = opts.retryMaxMs ?? 30_000;

  let queue: Observation[] = [];
  let inFlight: Observation[] = [];
  let sending: Promise<void> | undefined;
  let refusing = false;
  let retryDelay = retryMinMs;
  let retryTimer: NodeJS.Timeout | undefined;
  let pumpScheduled = false;
  /** `draining`: close() was called; what is queued still goes out, but a refusal is not retried. */
  let state: 'open' | 'draining' | 'closed' = 'open';
  const counts = { committed: 0, refusals: 0, dropped: 0 };
  let idleWaiters: Array<() => void> = [];

  /** Keeps the last reading per key, in the order of those last readings. */
  const collapse = () => {
    const seen = new Set<string>();
    const kept: Observation[] = [];
    for (let i = queue.length - 1; i >= 0; i--) {
      const o = queue[i] as Observation;
      const key = opts.keyOf(o);
      if (seen.has(key)) continue;
      seen.add(key);
      kept.push(o);
    }
    counts.dropped += queue.length - kept.length;
    queue = kept.reverse();
    // More distinct keys than room: the oldest go.
    if (queue.length > maxQueued) {
      counts.dropped += queue.length - maxQueued;
      queue = queue.slice(queue.length - maxQueued);
    }
  };

  const notifyIdle = () => {
    const stuck = state !== 'open' && refusing;
    if (sending !== undefined || (queue.length > 0 && !stuck)) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  const schedule = () => {
    if (pumpScheduled) return;
    pumpScheduled = true;
    // setImmediate, not a microtask, so that updates the client hands over in one burst share a batch.
    setImmediate(() => {
      pumpScheduled = false;
      pump();
    });
  };

  const retryLater = () => {
    const delay = retryDelay * (0.75 + Math.random() * 0.5);
    retryDelay = Math.min(retryDelay * 2, retryMaxMs);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      pump();
    }, delay);
  };

  const pump = () => {
    if (state === 'closed' || sending !== undefined || retryTimer !== undefined || queue.length === 0) {
      return notifyIdle();
    }
    if (state === 'draining' && refusing) return notifyIdle();
    inFlight = queue.splice(0, maxBatch);
    const batch = inFlight;
    // Through an async wrapper so that a sink throwing synchronously counts as a refusal, not a crash.
    // Through an async wrapper so that a sink throwing synchronously counts as a refusal, not a crash.
    sending = (async () => opts.sink.submit(batch))().then(
      () => {
        counts.committed += batch.length;
        refusing = false;
        retryDelay = retryMinMs;
      },
      (error: unknown) => {
        counts.refusals++;
        refusing = true;
        queue = [...batch, ...queue];
        collapse();
        opts.onRefused?.(error, queue.length);
        if (state === 'open') retryLater();
      },
    );
    void sending.finally(() => {
      sending = undefined;
      inFlight = [];
      pump();
    });
  };

  return {
    push(observation) {
      if (state !== 'open') {
        counts.dropped++;
        return;
      }
      if (refusing) {
        const key = opts.keyOf(observation);
        const at = queue.findIndex((o) => opts.keyOf(o) === key);
        if (at >= 0) {
          queue.splice(at, 1);
          counts.dropped++;
        }
      }
      queue.push(observation);
      if (queue.length > maxQueued) collapse();
      schedule();
    },

    stats: () => ({ queued: queue.length + inFlight.length, ...counts }),

    async close(timeoutMs = 5_000) {
      if (state !== 'open') return;
      state = 'draining';
      if (retryTimer !== undefined) {
        clearTimeout(retryTimer);
        retryTimer = undefined;
      }
      // One last attempt even after refusals; a refusal while draining ends it.
      refusing = false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          idleWaiters.push(resolve);
          pump();
        }),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      state = 'closed';
      counts.dropped += queue.length;
      queue = [];
    },
  };
}
