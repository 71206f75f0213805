import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import type { Logger } from 'pino';
import type { EdgeMetrics } from '../metrics.js';
import type { MqttAccess } from './mqtt-auth.js';
import { ConnectionDeliveries } from './mqtt-delivery.js';
import type { MqttIngest } from './mqtt-ingest.js';

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
}

export interface EmbeddedBroker {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The MQTT broker sensors connect to. A QoS 1 PUBACK goes out only after `ingest` has committed
 * the readings: aedes sends it once `authorizePublish` calls back, so holding that callback is
 * what ties the sensor's acknowledgement to the disk. If the PUBACK is lost after the commit (kill -9,
 * a dropped connection), the sensor sends the message again: the outbox recognises it by client id,
 * packet id and content (see `ConnectionDeliveries`) and it is acknowledged without a second copy.
 */
export async function startEmbeddedBroker(
  opts: EmbeddedBrokerOptions,
  deps: { ingest: MqttIngest; access: MqttAccess; metrics: EdgeMetrics; log: Logger },
): Promise<EmbeddedBroker> {
  const { ingest, access, metrics, log } = deps;
  const broker = await Aedes.createBroker({ drainTimeout: 30_000 });
  /** The authenticated user of each connection. */
  const users = new WeakMap<object, string>();
  /** Per connection (an aedes client object lives as long as its connection). */
  const connections = new WeakMap<object, ConnectionDeliveries>();
  broker.authenticate = (client, username, password, callback) => {
    const ok = access.authenticate(username, password);
    if (ok && username !== undefined) users.set(client, username);
    if (!ok) {
      metrics.mqttDenied.inc({ kind: 'connect' });
      log.warn({ client: client.id, username }, 'mqtt login refused: unknown user or wrong password');
    }
    callback(null, ok);
  };
  broker.authorizeSubscribe = (client, sub, callback) => {
    if (access.canSubscribe(users.get(client), sub.topic)) return callback(null, sub);
    metrics.mqttDenied.inc({ kind: 'subscribe' });
    log.warn({ client: client.id, topic: sub.topic }, 'mqtt subscribe refused by ACL');
    callback(new Error(`not allowed to subscribe to ${sub.topic}`), null);
  };
  broker.authorizePublish = (client, packet, callback) => {
    if (!client) return callback(null);
    if (packet.topic.startsWith('$SYS/')) return callback(new Error('$SYS/ topics are reserved'));
    if (!access.canPublish(users.get(client), packet.topic)) {
      // MQTT 3.1.1 has no negative PUBACK: the connection is closed, the sensor is not acknowledged.
      metrics.mqttDenied.inc({ kind: 'publish' });
      log.warn({ client: client.id, topic: packet.topic }, 'mqtt publish refused by ACL');
      return callback(new Error(`not allowed to publish to ${packet.topic}`));
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    let deliveries = connections.get(client);
    if (!deliveries) {
      deliveries = new ConnectionDeliveries(client.id, client.clean === false);
      connections.set(client, deliveries);
    }
    ingest(packet.topic, payload, deliveries.delivery(packet, payload)).then(
      () => callback(null),
      (err: unknown) => {
        // No PUBACK: the client will send again after it reconnects.
        log.warn({ err, topic: packet.topic }, 'buffer refused reading; disconnecting client without ack');
        callback(err as Error);
      },
    );
  };
  broker.on('clientError', (client, err) =>
    log.debug({ client: client?.id, err: err.message }, 'mqtt client error'),
  );

  const server: Server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  log.info({ host: opts.host, port }, 'embedded MQTT broker listening');
  let closed: Promise<void> | undefined;
  return {
    port,
    close() {
      closed ??= (async () => {
        // Stop accepting first, then let aedes end the open sessions, which lets the server close.
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        await serverClosed;
      })();
      return closed;
    },
  };
}
