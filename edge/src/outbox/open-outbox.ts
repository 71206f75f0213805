import { join } from 'node:path';
import type { Logger } from 'pino';
import type { EdgeConfig } from '../config.js';
import type { EdgeMetrics } from '../metrics.js';
import type { Outbox } from './outbox.js';
import { SqliteOutbox } from './sqlite-outbox.js';

/**
 * Opens the edge's buffer file in `data_dir` with the config's buffer and MQTT bounds, its events
 * counted and logged: the one place that knows the buffer is SQLite. Everything else holds the
 * `Outbox` port.
 */
export function openOutbox(
  config: EdgeConfig,
  capacityBytes: number,
  metrics: EdgeMetrics,
  log: Logger,
): Outbox {
  return new SqliteOutbox({
    path: join(config.data_dir, `${config.edge}.buffer.sqlite`),
    capacityBytes,
    onCorruptFile: (movedTo, err) => {
      metrics.bufferRecovered.inc();
      log.error(
        { movedTo, err: err.message },
        'BUFFER FILE UNREADABLE: moved aside and started a fresh buffer; readings in the old file were not sent',
      );
    },
    policy: config.buffer.policy,
    commitWindowMs: config.buffer.commit_window_ms,
    synchronous: config.buffer.synchronous,
    keepRejects: config.buffer.keep_rejects,
    rejectShare: config.buffer.reject_share,
    rejectPayloadBytes: config.buffer.reject_payload_bytes,
    onRejectsDropped: (n, limit) => metrics.rejectsDropped.inc({ limit }, n),
    deliveryMaxClients: config.mqtt.max_delivery_clients,
    onDeliveryClientsForgotten: (n) => metrics.mqttDeliveryClientsForgotten.inc(n),
    retainedMaxTopics: config.mqtt.max_retained_topics,
    onRetainedTopicsForgotten: (n) => metrics.mqttRetainedTopicsForgotten.inc(n),
    onDrop: (n) => {
      metrics.dropped.inc(n);
      log.warn({ dropped: n }, 'buffer full: dropped oldest readings (policy drop_oldest)');
    },
  });
}
