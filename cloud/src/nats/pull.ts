import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { Logger } from 'pino';

export interface DurableSpec {
  stream: string;
  durable: string;
  /** How long a delivered message may stay unacknowledged before the server hands it out again. */
  ackWaitMs: number;
  filterSubject?: string;
  /** Deliveries of one message before the server stops offering it; unset: without limit. */
  maxDeliver?: number;
}

/**
 * The shared durable pull consumer every collector reads through, created when missing. An existing
 * consumer with another `ack_wait` or `max_deliver` (made by an older version) is brought to this one,
 * so the time a killed collector's messages wait before another takes them, and how often a message
 * is tried, are what this version says.
 */
export async function ensureDurable(
  js: JetStreamClient,
  jsm: JetStreamManager,
  spec: DurableSpec,
): Promise<Consumer> {
  const ackWait = nanos(spec.ackWaitMs);
  const maxDeliver = spec.maxDeliver ?? -1;
  const info = await jsm.consumers.info(spec.stream, spec.durable).catch(() => undefined);
  if (!info) {
    await jsm.consumers.add(spec.stream, {
      durable_name: spec.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ackWait,
      max_ack_pending: 10_000,
      max_deliver: maxDeliver,
      ...(spec.filterSubject ? { filter_subject: spec.filterSubject } : {}),
    });
  } else if (info.config.ack_wait !== ackWait || (info.config.max_deliver ?? -1) !== maxDeliver) {
    await jsm.consumers.update(spec.stream, spec.durable, { ack_wait: ackWait, max_deliver: maxDeliver });
  }
  return js.consumers.get(spec.stream, spec.durable);
}

/**
 * One pull of up to `max` messages, waiting at most a second for them. Messages that arrived before
 * the pull failed (a missed heartbeat while this process was busy, a lost connection) are returned
 * with the rest: dropping them would leave them unacknowledged until `ack_wait` runs out.
 */
export async function pullSome(
  consumer: Consumer,
  max: number,
  log: Logger,
  context: Record<string, unknown>,
  /** Told of each message as it arrives, so work on it can start before the fetch ends. */
  onMessage?: (m: JsMsg) => void,
): Promise<{ msgs: JsMsg[]; failed: boolean }> {
  const msgs: JsMsg[] = [];
  try {
    const iter = await consumer.fetch({ max_messages: max, expires: 1000 });
    for await (const m of iter) {
      msgs.push(m);
      onMessage?.(m);
    }
    return { msgs, failed: false };
  } catch (err) {
    log.warn({ ...context, err: (err as Error).message, received: msgs.length }, 'fetch failed');
    return { msgs, failed: true };
  }
}

/**
 * Tells the server, every third of `ackWaitMs`, that `msgs` are still being worked on, so a long
 * commit or build is not handed to another collector meanwhile. Returns the stop function.
 */
export function keepWorking(msgs: readonly JsMsg[], ackWaitMs: number): () => void {
  const timer = setInterval(
    () => {
      for (const m of msgs) m.working();
    },
    Math.max(500, ackWaitMs / 3),
  );
  return () => clearInterval(timer);
}
