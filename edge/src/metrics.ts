import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { type BuildInfo, buildInfo } from './build-info.js';
import type { OutboxStats } from './outbox/outbox.js';

/**
 * The agent's Prometheus metrics, on a registry of its own (no process-global state). The agent's own
 * metrics are named `fb_edge_*`; Node's and the process's keep their standard names
 * (`process_cpu_seconds_total`, `nodejs_heap_size_used_bytes`, ...) so stock dashboards find them.
 */
export function createEdgeMetrics(build: BuildInfo = buildInfo()) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  /** The buffer, read at scrape time; unset until the agent has opened it. */
  let buffer: (() => Pick<OutboxStats, 'depth' | 'bytes' | 'oldestReceivedMs'>) | undefined;
  /** The buffer thread's heap as it last reported it; unset on one thread (`forward.thread: false`). */
  let threadHeap: (() => { used: number; total: number } | undefined) | undefined;
  const readBuffer = () => {
    try {
      return buffer?.();
    } catch {
      // A buffer that cannot answer (closed, I/O error) leaves the last values; /healthz says why.
      return undefined;
    }
  };
  new Gauge({
    name: 'fb_edge_build_info',
    help: 'Always 1; labels say what runs: version, commit (FB_BUILD_COMMIT or the bundle stamp), node',
    labelNames: ['version', 'commit', 'node'],
    registers: [registry],
  }).set({ version: build.version, commit: build.commit, node: build.node }, 1);
  const m = {
    registry,
    /** Lets the buffer gauges read `stats` at every scrape. */
    observeBuffer(stats: () => Pick<OutboxStats, 'depth' | 'bytes' | 'oldestReceivedMs'>): void {
      buffer = stats;
    },
    /** Lets the buffer thread's heap gauges read its latest report at every scrape. */
    observeBufferThreadHeap(heap: () => { used: number; total: number } | undefined): void {
      threadHeap = heap;
    },
    received: new Counter({
      name: 'fb_edge_messages_received_total',
      help: 'Messages received from sources',
      labelNames: ['source'],
      registers: [registry],
    }),
    readings: new Counter({
      name: 'fb_edge_readings_total',
      help: 'Readings committed to the buffer',
      labelNames: ['source'],
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'fb_edge_rejected_total',
      help: 'Inputs rejected (kept in the buffer file for inspection)',
      labelNames: ['source', 'kind'],
      registers: [registry],
    }),
    rejectsDropped: new Counter({
      name: 'fb_edge_rejects_dropped_total',
      help: 'Kept rejects discarded, oldest first, to stay within buffer.keep_rejects (limit="count") or buffer.reject_share of capacity_bytes (limit="bytes")',
      labelNames: ['limit'],
      registers: [registry],
    }),
    timeOutOfRange: new Counter({
      name: 'fb_edge_time_out_of_range_total',
      help: 'Readings whose sensor time lay outside mqtt.accepted_time, stamped with receipt time instead (flag time_out_of_range)',
      registers: [registry],
    }),
    skipped: new Counter({
      name: 'fb_edge_no_reading_total',
      help: 'Fields that carried a "no reading" marker (nan, unknown, ...)',
      labelNames: ['source'],
      registers: [registry],
    }),
    unmatched: new Counter({
      name: 'fb_edge_unmatched_topic_total',
      help: 'Messages on topics no sensor matches, by first topic level',
      labelNames: ['prefix'],
      registers: [registry],
    }),
    autoRegistered: new Gauge({
      name: 'fb_edge_auto_registered_sensors',
      help: 'Sensors registered from unmatched topics (auto_register)',
      registers: [registry],
    }),
    centralConfigRefused: new Counter({
      name: 'fb_edge_central_config_refused_total',
      help: 'Central sensor config values (KV fb_sensors) refused as invalid; the last good config stays applied',
      registers: [registry],
    }),
    centralConfigRevision: new Gauge({
      name: 'fb_edge_central_config_revision',
      help: 'KV revision of the central sensor config applied (0: none)',
      registers: [registry],
    }),
    autoRegisterSkipped: new Counter({
      name: 'fb_edge_auto_register_skipped_total',
      help: 'Unmatched messages in auto_register scope that made no sensor: limit (max_sensors reached), no_reading (nothing numeric inferred)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    mqttDenied: new Counter({
      name: 'fb_edge_mqtt_denied_total',
      help: 'MQTT logins, publishes and subscriptions refused',
      labelNames: ['kind'],
      registers: [registry],
    }),
    mqttRefused: new Counter({
      name: 'fb_edge_mqtt_refused_total',
      help: 'Embedded broker: connections closed and publishes refused by its bounds and protocol checks (reason: connect_too_large, packet_too_large, protocol, pending_limit, connect_timeout, client_id_taken, invalid_topic, sys_topic, wildcard_topic)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    mqttNotRetained: new Counter({
      name: 'fb_edge_mqtt_not_retained_total',
      help: 'Embedded broker: retained publishes passed on without being retained (reason: unmatched, rejected, limit)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    mqttDeliveryClientsForgotten: new Counter({
      name: 'fb_edge_mqtt_delivery_clients_forgotten_total',
      help: 'Client ids whose remembered deliveries were forgotten because mqtt.max_delivery_clients was reached (least recently active first)',
      registers: [registry],
    }),
    mqttDuplicates: new Counter({
      name: 'fb_edge_mqtt_duplicate_total',
      help: 'QoS 1/2 MQTT messages re-delivered after being committed (PUBACK lost): acknowledged, not stored again',
      registers: [registry],
    }),
    mqttRetainedRepeats: new Counter({
      name: 'fb_edge_mqtt_retained_repeat_total',
      help: 'External broker: retained messages replayed on subscribe whose payload was already stored from their topic: acknowledged, not stored again',
      registers: [registry],
    }),
    mqttRetainedTopicsForgotten: new Counter({
      name: 'fb_edge_mqtt_retained_topics_forgotten_total',
      help: 'Topics whose last stored retained payload was forgotten because mqtt.max_retained_topics was reached (least recently updated first)',
      registers: [registry],
    }),
    forwarded: new Counter({
      name: 'fb_edge_forwarded_total',
      help: 'Observations acknowledged by the uplink',
      registers: [registry],
    }),
    unexpectedDuplicates: new Counter({
      name: 'fb_edge_uplink_unexpected_duplicates_total',
      help: 'Batches JetStream called duplicates on their first publish (their message id was used by another publisher): sent again under a new id',
      registers: [registry],
    }),
    uplinkErrors: new Counter({
      name: 'fb_edge_uplink_errors_total',
      help: 'Failed publish rounds (each followed by a backoff)',
      registers: [registry],
    }),
    dropped: new Counter({
      name: 'fb_edge_buffer_dropped_total',
      help: 'Observations dropped by the drop_oldest policy',
      registers: [registry],
    }),
    controlRequests: new Counter({
      name: 'fb_edge_control_requests_total',
      help: 'Requests to the control service (fb.ctl.<edge>.<op>) by op and outcome: ok, refused (bad request or invalid config file, answered with an error), failed',
      labelNames: ['op', 'outcome'],
      registers: [registry],
    }),
    httpIntake: new Counter({
      name: 'fb_edge_http_intake_requests_total',
      help: 'POST /ingest requests by client (a configured name, or "-" before one is known) and outcome: stored, empty, unmatched, rejected, unauthorized, forbidden, too_large, timeout, aborted (the client went away), busy (buffer full), overloaded (too many at once), not_found (no topic, not a POST), failed',
      labelNames: ['client', 'outcome'],
      registers: [registry],
    }),
    bufferRecovered: new Counter({
      name: 'fb_edge_buffer_file_recovered_total',
      help: 'Unreadable buffer files moved aside at start',
      registers: [registry],
    }),
    bufferCheckpointFailures: new Counter({
      name: 'fb_edge_buffer_checkpoint_failures_total',
      help: 'WAL checkpoints of the buffer file that failed (tried again after the next commit)',
      registers: [registry],
    }),
    depth: new Gauge({
      name: 'fb_edge_buffer_depth',
      help: 'Observations waiting in the buffer',
      registers: [registry],
      collect() {
        const s = readBuffer();
        if (s) this.set(s.depth);
      },
    }),
    bytes: new Gauge({
      name: 'fb_edge_buffer_bytes',
      help: 'Bytes used in the buffer',
      registers: [registry],
      collect() {
        const s = readBuffer();
        if (s) this.set(s.bytes);
      },
    }),
    oldestUnsentAge: new Gauge({
      name: 'fb_edge_buffer_oldest_unsent_age_seconds',
      help: 'Age of the oldest reading the uplink has not acknowledged yet (receipt time to scrape time); 0 when the buffer is empty',
      registers: [registry],
      collect() {
        const s = readBuffer();
        if (s)
          this.set(s.oldestReceivedMs === null ? 0 : Math.max(0, (Date.now() - s.oldestReceivedMs) / 1000));
      },
    }),
    threadHeapUsed: new Gauge({
      name: 'fb_edge_buffer_thread_heap_used_bytes',
      help: "V8 heap used by the buffer thread's isolate (nodejs_heap_size_used_bytes is the main thread's)",
      registers: [registry],
      collect() {
        const h = threadHeap?.();
        if (h) this.set(h.used);
      },
    }),
    threadHeapTotal: new Gauge({
      name: 'fb_edge_buffer_thread_heap_total_bytes',
      help: "V8 heap committed by the buffer thread's isolate (nodejs_heap_size_total_bytes is the main thread's)",
      registers: [registry],
      collect() {
        const h = threadHeap?.();
        if (h) this.set(h.total);
      },
    }),
    uplink: new Gauge({
      name: 'fb_edge_uplink_connected',
      help: '1 when the uplink is connected',
      registers: [registry],
    }),
  };
  return m;
}
export type EdgeMetrics = ReturnType<typeof createEdgeMetrics>;
