import mqtt from 'mqtt';
import type { Logger } from 'pino';
import type { MqttIngest } from './mqtt-ingest.js';

/**
 * Subscribes to an external broker (e.g. mosquitto) with a persistent session. mqtt.js acknowledges a
 * QoS 1 message when `handleMessage` calls back, so the ack is held until the readings are committed;
 * mqtt.js handles one message at a time, which is the price of that guarantee.
 */
export async function startExternalSubscriber(
  url: string,
  filters: () => string[],
  ingest: MqttIngest,
  log: Logger,
): Promise<{ close(): Promise<void> }> {
  if (!url) throw new Error('mqtt.url is required when mqtt.mode is external');
  const client = mqtt.connect(url, {
    clean: false,
    clientId: `fieldbeam-${process.pid}`,
    reconnectPeriod: 1000,
  });
  client.handleMessage = (packet, callback) => {
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    ingest(packet.topic, payload).then(
      () => callback(),
      (err: Error) => {
        log.warn(
          { err: err.message },
          'buffer refused reading from external broker; reconnecting to get it again',
        );
        client.end(true, {}, () => client.reconnect());
      },
    );
  };
  client.on('connect', () => {
    const f = filters();
    if (f.length > 0) client.subscribe(f, { qos: 1 });
    log.info({ url, filters: f }, 'subscribed to external MQTT broker');
  });
  client.on('error', (err) => log.warn({ err: err.message }, 'external MQTT broker error'));
  return { close: () => client.endAsync() };
}
