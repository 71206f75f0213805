import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import type { Logger } from 'pino';
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
 * what ties the sensor's acknowledgement to the disk.
 */
export async function startEmbeddedBroker(
  opts: EmbeddedBrokerOptions,
  ingest: MqttIngest,
  log: Logger,
): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker({ drainTimeout: 30_000 });
  broker.authorizePublish = (client, packet, callback) => {
    if (!client) return callback(null);
    if (packet.topic.startsWith('$SYS/')) return callback(new Error('$SYS/ topics are reserved'));
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    ingest(packet.topic, payload).then(
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
