import type { AcceptedTimeRange } from '@fieldbeam/protocol';
import type { Logger } from 'pino';
import { createLogThrottle } from '../log-throttle.js';
import type { EdgeMetrics } from '../metrics.js';
import type { MqttDelivery } from '../outbox/outbox.js';
import type { MqttSink, RejectSink } from '../readings.js';
import { newTraceId } from '../trace-ids.js';
import { deliveryHash } from './mqtt-delivery.js';
import type { SensorMap } from './sensor-map.js';
import { createTopicObservations } from './topic-observations.js';

export interface MqttIngestDeps {
  edge: string;
  /** Read on every message so a SIGHUP reload takes effect without reconnecting anyone. */
  sensors: () => SensorMap;
  sink: MqttSink;
  rejects: RejectSink;
  metrics: EdgeMetrics;
  log: Logger;
  /** Larger payloads are rejected before decoding. */
  maxPayloadBytes: number;
  /** Messages that decode to more readings are rejected whole. */
  maxReadingsPerMessage: number;
  /** True while the wall clock is not synchronised: receipt-time readings are flagged for re-stamping. */
  clockUnsynced: () => boolean;
  /** Sensor times outside it are replaced by the receipt time and flagged `time_out_of_range` (`mqtt.accepted_time`). */
  acceptedTime?: AcceptedTimeRange;
  /**
   * Give each message a new trace-id, carried by its observations (`trace_ids`, default true). MQTT
   * 3.1.1, which the embedded broker and the external subscription speak, has no place for a
   * `traceparent`, so every message starts its trace here.
   */
  traceIds?: boolean;
}

/**
 * What became of a message: its readings were committed (or it re-delivered committed ones),
 * no sensor matched its topic, it was rejected (and recorded), or it carried nothing to store.
 */
export type IngestOutcome = 'stored' | 'unmatched' | 'rejected' | 'ignored';

/**
 * One MQTT message in: decode, validate and commit. Resolves once the readings are durable (or the
 * message was rejected and counted), which is when a QoS 1 PUBACK may go out. Rejects only when
 * the buffer cannot take the readings, so the sensor is not acknowledged and sends again. With the
 * `delivery` of a QoS 1/2 message, a re-delivery of one already committed is counted and not stored.
 */
export function createMqttIngest(deps: MqttIngestDeps) {
  const { metrics, log } = deps;
  // Label children resolved once: per-message label lookups show up in profiles at high rates.
  const received = metrics.received.labels('mqtt');
  const readings = metrics.readings.labels('mqtt');
  const decodeTopic = createTopicObservations(deps, 'mqtt');
  // Every reject is counted and kept; its warning is logged once per 10 s per kind, so a flood of bad
  // messages cannot flood the journal (topics can be 64 KiB: the line keeps their first 200 characters).
  const rejectWarnings = createLogThrottle(10_000);
  const traceIds = deps.traceIds ?? true;
  const reject = (
    topic: string,
    payload: Uint8Array,
    kind: string,
    reason: string,
    trace: string | undefined,
  ) => {
    metrics.rejected.inc({ source: 'mqtt', kind });
    const logged = rejectWarnings.pass(kind);
    if (logged) {
      log.warn(
        {
          topic: topic.length > 200 ? `${topic.slice(0, 200)}...` : topic,
          reason,
          kind,
          trace_id: trace,
          ...logged,
        },
        'mqtt message rejected (further ones within 10 s counted in fb_edge_rejected_total and kept: fieldbeam-edge rejects)',
      );
    }
    // Its first bytes are copied now and kept with the buffer's next commit. The PUBACK does not wait
    // for that: a reject need not be durable, and in external mode, where messages are taken one at
    // a time, good ones would queue behind it.
    deps.rejects.reject({ source: 'mqtt', topic, reason, payload });
  };

  return async function ingest(
    topic: string,
    payload: Uint8Array,
    delivery?: MqttDelivery,
    /**
     * Given for messages from an external broker: `replayed` is the RETAIN flag of the delivery, set
     * when the broker sends it from its retained store on subscribe, which it does on every (re)start.
     */
    broker?: { replayed: boolean },
  ): Promise<IngestOutcome> {
    const receivedMs = Date.now();
    received.inc();
    // The message's trace starts here: its readings, its reject and its log lines carry it.
    const trace = traceIds ? newTraceId() : undefined;
    if (payload.length > deps.maxPayloadBytes) {
      reject(
        topic,
        payload,
        'oversized',
        `payload of ${payload.length} bytes exceeds mqtt.max_packet_bytes (${deps.maxPayloadBytes})`,
        trace,
      );
      return 'rejected';
    }
    const decoded = decodeTopic(topic, payload, receivedMs, undefined, trace);
    switch (decoded.kind) {
      case 'unmatched':
      case 'ignored':
        return decoded.kind;
      case 'rejected':
        reject(topic, payload, decoded.reject, decoded.reason, trace);
        return 'rejected';
      case 'observations': {
        const { observations } = decoded;
        if (decoded.refused !== undefined) reject(topic, payload, 'text', decoded.refused, trace);
        const retained = broker && {
          topic,
          // The same digest as the delivery's, which QoS 0 messages do not have.
          payloadHash: delivery?.hash ?? deliveryHash(topic, payload),
          replayed: broker.replayed,
        };
        const stored = await deps.sink.submit(observations, delivery, retained);
        if (stored === 'duplicate') {
          metrics.mqttDuplicates.inc();
          log.debug(
            { topic, client: delivery?.clientId, packetId: delivery?.packetId, trace_id: trace },
            'mqtt re-delivery not stored again',
          );
          return 'stored';
        }
        if (stored === 'retained_repeat') {
          metrics.mqttRetainedRepeats.inc();
          log.debug(
            { topic, trace_id: trace },
            'retained message replayed by the broker on subscribe; stored before, not again',
          );
          return 'stored';
        }
        readings.inc(observations.length);
        return 'stored';
      }
    }
  };
}
export type MqttIngest = ReturnType<typeof createMqttIngest>;
