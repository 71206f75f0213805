import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Publisher } from './publisher.js';

export interface JetStreamPublisherOptions {
  servers: string[];
  name: string;
  user?: string;
  pass?: string;
  /** How long to wait for a PubAck before treating the publish as failed and retrying. */
  ackTimeoutMs: number;
}

export interface JetStreamPublisher extends Publisher {
  readonly connection: NatsConnection;
  close(): Promise<void>;
}

/**
 * Connects to NATS and publishes to JetStream. The connection reconnects forever and the agent
 * starts even while the uplink is down (`waitOnFirstConnect`): an edge must never need its uplink to boot.
 */
export async function createJetStreamPublisher(opts: JetStreamPublisherOptions): Promise<JetStreamPublisher> {
  const nc = await connect({
    servers: opts.servers,
    name: opts.name,
    ...(opts.user !== undefined ? { user: opts.user, pass: opts.pass ?? '' } : {}),
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    reconnectJitter: 500,
    pingInterval: 10_000,
    maxPingOut: 3,
  });
  const js = jetstream(nc, { timeout: opts.ackTimeoutMs });
  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') connected = false;
      else if (s.type === 'reconnect') connected = true;
    }
  })();
  let closed = false;
  return {
    connection: nc,
    get connected() {
      return connected && !nc.isClosed();
    },
    async publish(subject, data, msgId) {
      const ack = await js.publish(subject, data, { msgID: msgId, timeout: opts.ackTimeoutMs });
      return { duplicate: ack.duplicate };
    },
    publishStatus(subject, data) {
      if (!nc.isClosed()) nc.publish(subject, data);
    },
    async close() {
      if (closed) return;
      closed = true;
      await nc.drain().catch(() => nc.close());
    },
  };
}
