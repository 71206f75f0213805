import { join } from 'node:path';
import type { Logger } from 'pino';
import type { EdgeConfig } from '../config.js';
import type { EdgeMetrics } from '../metrics.js';
import type { RejectLimit } from './reject-table.js';
import { SqliteOutbox } from './sqlite-outbox.js';

/**
 * What the buffer reports as it works, for metrics and the log. Plain values only: on a buffer
 * thread they are posted to the main thread, which counts and logs them (`outboxEventsFor`).
 */
export interface OutboxEvents {
  corruptFile(movedTo: string, message: string): void;
  rejectsDropped(count: number, limit: RejectLimit): void;
  deliveryClientsForgotten(count: number): void;
  retainedTopicsForgotten(count: number): void;
  dropped(count: number): void;
  checkpointFailed(message: string): void;
}

/** The buffer's events counted in `metrics` and logged. */
export function outboxEventsFor(metrics: EdgeMetrics, log: Logger): OutboxEvents {
  return {
    corruptFile: (movedTo, message) => {
      metrics.bufferRecovered.inc();
      log.error(
        { movedTo, err: message },
        'BUFFER FILE UNREADABLE: moved aside and started a fresh buffer; readings in the old file were not sent',
      );
    },
    rejectsDropped: (n, limit) => metrics.rejectsDropped.inc({ limit }, n),
    deliveryClientsForgotten: (n) => metrics.mqttDeliveryClientsForgotten.inc(n),
    retainedTopicsForgotten: (n) => metrics.mqttRetainedTopicsForgotten.inc(n),
    dropped: (n) => {
      metrics.dropped.inc(n);
      log.warn({ dropped: n }, 'buffer full: dropped oldest readings (policy drop_oldest)');
    },
    checkpointFailed: (message) => {
      metrics.bufferCheckpointFailures.inc();
      log.warn(
        { err: message },
        'buffer WAL checkpoint failed (is the card full or failing?); readings stay committed in the log, tried again after the next commit',
      );
    },
  };
}

/**
 * Opens the edge's buffer file in `data_dir` with the config's buffer and MQTT bounds, reporting its
 * events to `events`: the one place that knows the buffer is SQLite. The agent holds the `Outbox`
 * port; only the forwarder beside it (on the same thread) takes rows from the file.
 */
export function openOutbox(config: EdgeConfig, capacityBytes: number, events: OutboxEvents): SqliteOutbox {
  return new SqliteOutbox({
    path: join(config.data_dir, `${config.edge}.buffer.sqlite`),
    capacityBytes,
    onCorruptFile: (movedTo, err) => events.corruptFile(movedTo, err.message),
    policy: config.buffer.policy,
    commitWindowMs: config.buffer.commit_window_ms,
    synchronous: config.buffer.synchronous,
    keepRejects: config.buffer.keep_rejects,
    rejectShare: config.buffer.reject_share,
    rejectPayloadBytes: config.buffer.reject_payload_bytes,
    onRejectsDropped: (n, limit) => events.rejectsDropped(n, limit),
    deliveryMaxClients: config.mqtt.max_delivery_clients,
    onDeliveryClientsForgotten: (n) => events.deliveryClientsForgotten(n),
    retainedMaxTopics: config.mqtt.max_retained_topics,
    onRetainedTopicsForgotten: (n) => events.retainedTopicsForgotten(n),
    onDrop: (n) => events.dropped(n),
    onCheckpointFailed: (err) => events.checkpointFailed(err.message),
  });
}
