import { streams } from '@fieldbeam/protocol';
import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection, nkeyAuthenticator } from '@nats-io/transport-node';
import { EdgeError, EdgeErrorCode } from '../errors.js';
import { DRAIN_BOUND_MS, drainThenClose, settlesWithin } from './close-bound.js';
import type { Publisher } from './publisher.js';

export interface JetStreamPublisherOptions {
  servers: string[];
  name: string;
  user?: string;
  pass?: string;
  /** nkey user seed; takes precedence over user/pass. */
  nkeySeed?: string;
  /**
   * Where replies (the JetStream acks) arrive: this edge's own `_INBOX.<edge>`, the only inbox its
   * credentials may subscribe to.
   */
  inboxPrefix: string;
  /** How long to wait for a PubAck before treating the publish as failed and retrying. */
  ackTimeoutMs: number;
  onState?: (state: 'connected' | 'disconnected', detail?: string) => void;
}

export interface JetStreamPublisher extends Publisher {
  /**
   * The uplink's connection once it is made (for the agent's other NATS clients: central sensor
   * config); never settles if the publisher is closed first. The client reconnects it by itself.
   */
  connection(): Promise<NatsConnection>;
  /** Drains the connection for a bounded time (`DRAIN_BOUND_MS`), then closes it. */
  close(): Promise<void>;
}

/**
 * Publishes to JetStream over a NATS connection that is made in the background and kept forever.
 * The agent never waits for its uplink to start: until the first connection succeeds, publishes fail
 * fast and the forwarder backs off, while readings keep going into the buffer.
 */
export function createJetStreamPublisher(opts: JetStreamPublisherOptions): JetStreamPublisher {
  let nc: NatsConnection | undefined;
  let js: JetStreamClient | undefined;
  let connected = false;
  let closed = false;
  let wake: (() => void) | undefined;
  let reconnected: { promise: Promise<void>; resolve: () => void } | undefined;
  let madeConnection: (conn: NatsConnection) => void = () => {};
  const made = new Promise<NatsConnection>((resolve) => {
    madeConnection = resolve;
  });
  const up = () => {
    connected = true;
    opts.onState?.('connected');
    reconnected?.resolve();
    reconnected = undefined;
  };

  const watch = async (conn: NatsConnection) => {
    for await (const s of conn.status()) {
      if (s.type === 'disconnect') {
        connected = false;
        opts.onState?.('disconnected');
      } else if (s.type === 'reconnect') {
        up();
      }
    }
  };

  // The client reconnects on its own once connected; the first connection is retried here so that
  // it can be cancelled by close().
  const connecting = (async () => {
    for (let attempt = 0; !closed; attempt++) {
      try {
        const conn = await connect({
          servers: opts.servers,
          name: opts.name,
          inboxPrefix: opts.inboxPrefix,
          ...(opts.nkeySeed !== undefined
            ? { authenticator: nkeyAuthenticator(new TextEncoder().encode(opts.nkeySeed)) }
            : opts.user !== undefined
              ? { user: opts.user, pass: opts.pass ?? '' }
              : {}),
          maxReconnectAttempts: -1,
          reconnectTimeWait: 1000,
          reconnectJitter: 500,
          timeout: 5000,
          pingInterval: 10_000,
          maxPingOut: 3,
        });
        if (closed) {
          await conn.close();
          return;
        }
        nc = conn;
        js = jetstream(conn, { timeout: opts.ackTimeoutMs });
        madeConnection(conn);
        up();
        void watch(conn);
        return;
      } catch (err) {
        opts.onState?.('disconnected', (err as Error).message);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(10_000, 500 * 2 ** Math.min(attempt, 5)));
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    }
  })();

  return {
    get connected() {
      return connected && !!nc && !nc.isClosed();
    },
    async publish(subject, data, msgId) {
      if (!js) throw new EdgeError(EdgeErrorCode.UPLINK, 'not connected to NATS yet', true);
      try {
        const ack = await js.publish(subject, data, { msgID: msgId, timeout: opts.ackTimeoutMs });
        return { duplicate: ack.duplicate };
      } catch (err) {
        throw explainPublishError(err, subject);
      }
    },
    whenReconnected() {
      if (!reconnected) {
        let resolve = () => {};
        const promise = new Promise<void>((r) => {
          resolve = r;
        });
        reconnected = { promise, resolve };
      }
      return reconnected.promise;
    },
    connection: () => made,
    publishStatus(subject, data) {
      if (nc && !nc.isClosed() && connected) nc.publish(subject, data);
    },
    async close() {
      if (closed) return;
      closed = true;
      wake?.();
      reconnected?.resolve();
      // A first connection still being made is closed by its loop when it comes (see `connecting`).
      await settlesWithin(connecting, DRAIN_BOUND_MS);
      if (nc) await drainThenClose(nc);
    },
  };
}

/**
 * A publish nobody answered explained. The server answers "no responders" when no JetStream stream
 * takes the subject, which is what an edge sees before the collector has created the streams (the
 * client reports it as "jetstream is not enabled", but the server usually has JetStream); an edge has
 * no right to ask the JetStream API which it is, so the message names both. Other errors unchanged.
 */
export function explainPublishError(err: unknown, subject: string): unknown {
  if (!isNoResponders(err)) return err;
  return new EdgeError(
    EdgeErrorCode.NO_STREAM,
    `no JetStream stream takes ${subject}; start the collector, which creates the streams (or create ` +
      `${streams.OBS.name}), and check that the NATS server has JetStream enabled`,
    true,
    { cause: err },
  );
}

function isNoResponders(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // nats.js: JetStreamNotEnabled (not exported) wrapping a RequestError whose status is 503.
  if (err.name === 'JetStreamNotEnabled') return true;
  const cause = err.cause as { isNoResponders?: () => boolean } | undefined;
  return typeof cause?.isNoResponders === 'function' && cause.isNoResponders();
}
