import mqtt from 'mqtt';
import type { Logger } from 'pino';
import { redactUrl } from '../redact.js';
import { ConnectionDeliveries } from './mqtt-delivery.js';
import type { MqttIngest } from './mqtt-ingest.js';

export interface ExternalSubscriber {
  /** Connected and subscribed to the configured filters. */
  readonly subscribed: boolean;
  /** Subscribes to the current filters and drops those no longer configured (after a reload). */
  refresh(): void;
  close(): Promise<void>;
}

/**
 * Subscribes to an external broker (e.g. mosquitto) with a persistent session (`clean: false`, QoS 1),
 * so the broker queues readings while the agent restarts. mqtt.js acknowledges a QoS 1 message when
 * `handleMessage` calls back, so the ack is held until the readings are committed; mqtt.js handles
 * one message at a time, which is the price of that guarantee. While the buffer is full under
 * `block`, that one message waits, and the broker holds the rest. If the agent dies after a commit and
 * before its PUBACK, the broker sends the message again (DUP set, same packet id) once the agent is
 * back: recognised by packet id and content in the outbox, it is acknowledged and not stored twice.
 *
 * The broker also sends the retained message of each matching topic every time the agent subscribes,
 * which is on every start and reconnect: the outbox remembers the payload last stored per topic and
 * does not store such a replay of it again (`RetainedTable`).
 */
export async function startExternalSubscriber(
  url: string,
  /** Stable across restarts, so the broker keeps this agent's session and queues for it while it is down. */
  clientId: string,
  filters: () => string[],
  ingest: MqttIngest,
  log: Logger,
): Promise<ExternalSubscriber> {
  if (!url) throw new Error('mqtt.url is required when mqtt.mode is external');
  // The URL may carry the broker password: only this form of it is ever logged.
  const shownUrl = redactUrl(url);
  const client = mqtt.connect(url, { clean: false, clientId, reconnectPeriod: 1000, protocolVersion: 4 });
  let subscribed = new Set<string>();
  let ready = false;
  // The broker numbers its messages to this agent in the agent's session: the session is ours, and the
  // prefix keeps it apart from sensors' client ids in the embedded mode on the same buffer file.
  const sessionId = `external:${clientId}`;
  let deliveries = new ConnectionDeliveries(sessionId, true);
  client.handleMessage = (packet, callback) => {
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    // RETAIN on a delivery to a subscriber marks the broker's replay of its retained message on
    // subscribe (MQTT 3.1.1 clears it on messages passed on live or queued for the session).
    ingest(packet.topic, payload, deliveries.delivery(packet, payload), {
      replayed: packet.retain === true,
    }).then(
      () => callback(),
      (err: Error) => {
        // Not acknowledged: drop the connection so the broker delivers it again after reconnecting.
        log.warn({ err: err.message }, 'buffer refused a reading from the external broker; reconnecting');
        client.stream.destroy();
      },
    );
  };
  const refresh = () => {
    const next = new Set(filters());
    const gone = [...subscribed].filter((f) => !next.has(f));
    if (gone.length > 0) client.unsubscribe(gone);
    subscribed = next;
    if (next.size > 0) {
      client.subscribe([...next], { qos: 1 }, (err) => {
        if (err) log.warn({ err: err.message }, 'external MQTT subscribe failed');
        else ready = true;
      });
    }
  };
  client.on('connect', () => {
    refresh();
    log.info({ url: shownUrl, filters: [...subscribed] }, 'subscribed to external MQTT broker');
  });
  client.on('close', () => {
    ready = false;
    // Whatever arrives next arrives on a new connection.
    deliveries = new ConnectionDeliveries(sessionId, true);
  });
  client.on('offline', () => log.warn({ url: shownUrl }, 'external MQTT broker unreachable; retrying'));
  client.on('error', (err) => log.warn({ err: redactUrl(err.message) }, 'external MQTT broker error'));
  return {
    get subscribed() {
      return ready && client.connected;
    },
    refresh: () => {
      if (client.connected) refresh();
    },
    close: () => client.endAsync(),
  };
}
