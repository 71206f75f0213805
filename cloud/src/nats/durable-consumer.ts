import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { ensureDurable, keepWorking, pullSome } from './pull.js';

export interface DurableConsumerOptions {
  stream: string;
  /** Durable name; every collector using it shares the work. */
  durable: string;
  filterSubject?: string;
  /** Messages fetched and handed to `handle` at once. */
  batch: number;
  /** How long a message may stay unacknowledged before the server redelivers it. */
  ackWaitMs: number;
  /**
   * How often the server delivers one message at most (`max_deliver`); unset: without limit. A
   * handler given such a bound must give a message up itself (dead letter, `terminate`) on its last
   * delivery, which it sees in `info.deliveryCount`: the server's limit is a backstop a little
   * above it, for a process that died during that last try.
   */
  maxDeliver?: number;
  /** Wait before a failed message is delivered again, by the delivery that failed (1 = the first). */
  retryDelayMs?: (deliveryCount: number) => number;
  /**
   * Handles a batch. Resolving acknowledges every message of it except those the result names:
   * `retry` are delivered again after `retryDelayMs`, `terminate` never again (the handler has set
   * them aside). Throwing retries them all. A message that can never succeed (bad input) must be
   * dealt with (dead-lettered) and not throw.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler with nothing to report returns nothing
  handle(msgs: JsMsg[]): Promise<void | HandleResult>;
}

/** Messages of a batch that were not done: to be tried again, or given up for good. */
export interface HandleResult {
  retry?: readonly JsMsg[];
  terminate?: readonly JsMsg[];
}

/** Deliveries the server allows beyond the handler's own bound (see `maxDeliver`). */
const SERVER_MAX_DELIVER_MARGIN = 2;
const DEFAULT_RETRY_MS = 2000;

export interface DurableConsumer {
  readonly name: string;
  /** Messages not yet acknowledged: waiting in the stream plus delivered but unacked. */
  pending(): Promise<number>;
  close(): Promise<void>;
}

/** A pull consumer loop with explicit acks after the handler's work is durable. */
export async function startDurableConsumer(
  deps: { js: JetStreamClient; jsm: JetStreamManager; log: Logger },
  opts: DurableConsumerOptions,
): Promise<DurableConsumer> {
  const { js, jsm, log } = deps;
  const consumer = await ensureDurable(js, jsm, {
    ...opts,
    ...(opts.maxDeliver ? { maxDeliver: opts.maxDeliver + SERVER_MAX_DELIVER_MARGIN } : {}),
  });
  const delay = (m: JsMsg) => opts.retryDelayMs?.(m.info.deliveryCount) ?? DEFAULT_RETRY_MS;
  const abort = new AbortController();
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const loop = (async () => {
    while (!abort.signal.aborted) {
      const { msgs, failed } = await pullSome(consumer, opts.batch, log, { consumer: opts.durable });
      if (abort.signal.aborted) {
        for (const m of msgs) m.nak();
        break;
      }
      if (msgs.length === 0) {
        if (failed) await pause(1000);
        continue;
      }
      // Keep a long handler's messages from being redelivered to another collector meanwhile.
      const stopWorking = keepWorking(msgs, opts.ackWaitMs);
      try {
        const result = await opts.handle(msgs);
        const retry = new Set(result?.retry);
        const terminate = new Set(result?.terminate);
        for (const m of msgs) {
          if (terminate.has(m)) m.term();
          else if (retry.has(m)) m.nak(delay(m));
          else m.ack();
        }
      } catch (err) {
        log.warn(
          { err: (err as Error).message, code: (err as { code?: unknown }).code, consumer: opts.durable },
          'handler failed; messages will be redelivered',
        );
        for (const m of msgs) m.nak(delay(m));
        await pause(1000);
      } finally {
        stopWorking();
      }
    }
  })();

  return {
    name: opts.durable,
    async pending() {
      const info = await jsm.consumers.info(opts.stream, opts.durable);
      return info.num_pending + info.num_ack_pending;
    },
    async close() {
      abort.abort();
      await loop;
    },
  };
}
