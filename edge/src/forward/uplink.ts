import { readFileSync } from 'node:fs';
import { subjects } from '@fieldbeam/protocol';
import type { Logger } from 'pino';
import type { EdgeConfig } from '../config.js';
import type { EdgeMetrics } from '../metrics.js';
import type { OutboxQueue } from '../outbox/outbox.js';
import { redactUrl } from '../redact.js';
import { settlesWithin } from './close-bound.js';
import { defaultForwarderOptions, type Forwarder, startForwarder } from './forwarder.js';
import {
  createJetStreamPublisher,
  type JetStreamPublisher,
  type JetStreamPublisherOptions,
} from './jetstream-publisher.js';
import { createUplinkErrorLog } from './uplink-error-log.js';

/**
 * How long the batches in flight are waited for at shutdown. Through a blackholed uplink their acks
 * never come; each publish would end at `ack_timeout_ms`, but a stop must not wait that long.
 */
export const IN_FLIGHT_GRACE_MS = 3000;

/**
 * What the forwarder reports, as plain values: on the buffer thread they are posted to the main
 * thread, which counts and logs them (`uplinkEventsFor`).
 */
export interface UplinkEvents {
  /** Observations the stream acknowledged. */
  sent(observations: number): void;
  unexpectedDuplicate(d: { msgId: string; first: number; last: number; observations: number }): void;
  error(err: { message: string; code?: string | undefined }, attempt: number, retryInMs: number): void;
}

/** The forwarder's events counted in `metrics` and logged (a lasting error once a minute). */
export function uplinkEventsFor(metrics: EdgeMetrics, log: Logger): UplinkEvents {
  // A lasting cause (no stream yet, server down) is logged once a minute, not at every retry.
  const logUplinkError = createUplinkErrorLog(log, { everyMs: 60_000 });
  return {
    sent: (n) => metrics.forwarded.inc(n),
    unexpectedDuplicate: (d) => {
      metrics.unexpectedDuplicates.inc();
      log.error(
        d,
        'JetStream acknowledged a new batch as a duplicate: another publisher used its message id; sending it again under a new id',
      );
    },
    error: (err, attempt, retryInMs) => {
      metrics.uplinkErrors.inc();
      logUplinkError(Object.assign(new Error(err.message), { code: err.code }), attempt, retryInMs);
    },
  };
}

/** The agent's NATS connection settings; `role` names a second connection of the same edge. */
export function natsOptions(config: EdgeConfig, role?: string): Omit<JetStreamPublisherOptions, 'onState'> {
  return {
    servers: [...config.nats.servers],
    name: `fieldbeam-edge-${config.edge}${role ? `-${role}` : ''}`,
    inboxPrefix: subjects.inbox(config.edge),
    ...(config.nats.user !== undefined ? { user: config.nats.user } : {}),
    ...(config.nats.pass !== undefined ? { pass: config.nats.pass } : {}),
    ...nkeySeed(config),
    ackTimeoutMs: config.nats.ack_timeout_ms,
  };
}

function nkeySeed(config: EdgeConfig): { nkeySeed?: string } {
  if (config.nats.nkey_seed) return { nkeySeed: config.nats.nkey_seed };
  if (config.nats.nkey_seed_file)
    return { nkeySeed: readFileSync(config.nats.nkey_seed_file, 'utf8').trim() };
  return {};
}

/** Connection state changes of the uplink logged and shown in `fb_edge_uplink_connected`. */
export function uplinkStateFor(
  metrics: EdgeMetrics,
  log: Logger,
): (state: 'connected' | 'disconnected', detail?: string) => void {
  return (state, detail) => {
    metrics.uplink.set(state === 'connected' ? 1 : 0);
    if (state === 'connected') log.info('uplink connected');
    else log.warn({ detail: detail && redactUrl(detail) }, 'uplink not connected; buffering');
  };
}

export interface Uplink {
  readonly publisher: JetStreamPublisher;
  readonly forwarder: Forwarder;
  /**
   * Stops the forwarder: no new batches, and those in flight are given up to `IN_FLIGHT_GRACE_MS` for
   * their acks (an ack coming later, while the connection drains, still deletes its rows if the buffer
   * is open). False when some were still unacknowledged: their rows stay in the buffer, sent again
   * after the restart. Idempotent.
   */
  stopSending(): Promise<boolean>;
  /** `stopSending`, then the connection (drained for a bounded time, then closed). */
  close(): Promise<void>;
}

/**
 * The buffer's way out: a JetStream connection and the forwarder moving `queue` onto it, beside the
 * buffer file on whichever thread owns it.
 */
export function startUplink(
  config: EdgeConfig,
  queue: OutboxQueue,
  events: UplinkEvents,
  publisherOpts: Omit<JetStreamPublisherOptions, 'onState'> & Pick<JetStreamPublisherOptions, 'onState'>,
): Uplink {
  const publisher = createJetStreamPublisher(publisherOpts);
  const forwarder = startForwarder(
    queue,
    publisher,
    {
      ...defaultForwarderOptions,
      edge: config.edge,
      maxInFlight: config.forward.max_in_flight,
      maxBatchObservations: config.forward.max_batch_observations,
      maxBatchBytes: config.forward.max_batch_bytes,
      encoding: config.nats.encoding,
      v2BatchObservations: config.forward.v2_batch_observations,
    },
    {
      onSent: (batch) => events.sent(batch.rows.length),
      onUnexpectedDuplicate: (batch, msgId) =>
        events.unexpectedDuplicate({
          msgId,
          first: batch.first,
          last: batch.last,
          observations: batch.rows.length,
        }),
      onError: (err, attempt, retryInMs) => {
        const code = (err as { code?: unknown } | null)?.code;
        events.error(
          {
            message: err instanceof Error ? err.message : String(err),
            code: typeof code === 'string' ? code : undefined,
          },
          attempt,
          retryInMs,
        );
      },
    },
  );
  let stopping: Promise<boolean> | undefined;
  const stopSending = () => {
    stopping ??= settlesWithin(forwarder.close(), IN_FLIGHT_GRACE_MS);
    return stopping;
  };
  return {
    publisher,
    forwarder,
    stopSending,
    async close() {
      await stopSending();
      await publisher.close();
    },
  };
}
