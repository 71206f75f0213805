import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Logger } from 'pino';

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
  try {
    await jsm.consumers.info(opts.stream, opts.durable);
  } catch {
    await jsm.consumers.add(opts.stream, {
      durable_name: opts.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(opts.ackWaitMs),
      max_ack_pending: 10_000,
      ...(opts.filterSubject ? { filter_subject: opts.filterSubject } : {}),
    });
  }
  const consumer = await js.consumers.get(opts.stream, opts.durable);
  const abort = new AbortController();
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const loop = (async () => {
    while (!abort.signal.aborted) {
      let msgs: JsMsg[] = [];
      try {
        const iter = await consumer.fetch({ max_messages: opts.batch, expires: 1000 });
        for await (const m of iter) msgs.push(m);
      } catch (err) {
        if (abort.signal.aborted) break;
        log.warn({ err: (err as Error).message, consumer: opts.durable }, 'fetch failed; retrying');
        await pause(1000);
        continue;
      }
      if (msgs.length === 0) continue;
      // Keep a long handler's messages from being redelivered to another collector meanwhile.
      const progress = setInterval(
        () => {
          for (const m of msgs) m.working();
        },
        Math.max(500, opts.ackWaitMs / 3),
      );
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
        clearInterval(progress);
        msgs = [];
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
