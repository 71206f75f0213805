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
   * Handles a batch. Resolving acknowledges every message of it; throwing naks them all for a later
   * retry. A message that can never succeed (bad input) must be dealt with (dead-lettered) and not throw.
   */
  handle(msgs: JsMsg[]): Promise<void>;
}

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
  const consumer = await ensureDurable(js, jsm, opts);
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
        await opts.handle(msgs);
        for (const m of msgs) m.ack();
      } catch (err) {
        log.warn(
          { err: (err as Error).message, consumer: opts.durable },
          'handler failed; messages will be redelivered',
        );
        for (const m of msgs) m.nak(2000);
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
