import type { AcceptedTimeRange } from '@fieldbeam/protocol';
import type { Logger } from 'pino';
import { BoundedLabels } from '../bounded-labels.js';
import { createLogThrottle } from '../log-throttle.js';
import type { EdgeMetrics } from '../metrics.js';
import { CLOCK_UNSYNCED, type MqttDelivery } from '../outbox/outbox.js';
import {
  type MqttSink,
  type Origin,
  observationProblem,
  type RejectSink,
  toObservation,
} from '../readings.js';
import { deliveryHash } from './mqtt-delivery.js';
import type { SensorMap } from './sensor-map.js';

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
}

/**
 * What became of a message: its readings were committed (or it re-delivered committed ones),
 * no sensor matched its topic, it was rejected (and recorded), or it carried nothing to store.
 */
export type IngestOutcome = 'stored' | 'unmatched' | 'rejected' | 'ignored';

/** First topic levels with a series of their own in `fb_edge_unmatched_topic_total`; the rest are `other`. */
const UNMATCHED_PREFIXES = 32;

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
  const skipped = metrics.skipped.labels('mqtt');
  const unmatchedPrefix = new BoundedLabels(UNMATCHED_PREFIXES);
  // Every reject is counted and kept; its warning is logged once per 10 s per kind, so a flood of bad
  // messages cannot flood the journal (topics can be 64 KiB: the line keeps their first 200 characters).
  const rejectWarnings = createLogThrottle(10_000);
  const reject = (topic: string, payload: Uint8Array, kind: string, reason: string) => {
    metrics.rejected.inc({ source: 'mqtt', kind });
    const logged = rejectWarnings.pass(kind);
    if (logged) {
      log.warn(
        { topic: topic.length > 200 ? `${topic.slice(0, 200)}...` : topic, reason, kind, ...logged },
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
    if (payload.length > deps.maxPayloadBytes) {
      reject(
        topic,
        payload,
        'oversized',
        `payload of ${payload.length} bytes exceeds mqtt.max_packet_bytes (${deps.maxPayloadBytes})`,
      );
      return 'rejected';
    }
    const match = deps.sensors().decode(topic, payload, receivedMs);
    if (!match.matched) {
      metrics.unmatched.inc({ prefix: unmatchedPrefix.of(topic.split('/', 1)[0] ?? '') });
      return 'unmatched';
    }
    const { outcome } = match;
    switch (outcome.kind) {
      case 'rejected':
        reject(topic, payload, 'decode', outcome.reason);
        return 'rejected';
      case 'status':
      case 'ignored':
        return 'ignored';
      case 'readings': {
        if (outcome.skipped.length > 0) skipped.inc(outcome.skipped.length);
        if (outcome.readings.length === 0) return 'ignored';
        if (outcome.readings.length > deps.maxReadingsPerMessage) {
          reject(
            topic,
            payload,
            'too_many_readings',
            `${outcome.readings.length} readings in one message exceed mqtt.max_readings_per_message (${deps.maxReadingsPerMessage})`,
          );
          return 'rejected';
        }
        const origin = {
          ...(match.origin as Omit<Origin, 'edge' | 'source'>),
          source: 'mqtt',
          edge: deps.edge,
        };
        const unsynced = deps.clockUnsynced();
        // The accepted range is measured from the edge's clock, so it waits until that clock is synced.
        const acceptedTime = unsynced ? undefined : deps.acceptedTime;
        const problems: string[] = [];
        const observations = outcome.readings
          .map((r) =>
            toObservation(
              origin,
              unsynced && r.timeMs === undefined
                ? { ...r, quality: [...(r.quality ?? []), CLOCK_UNSYNCED] }
                : r,
              receivedMs,
              { acceptedTime },
            ),
          )
          .filter((o) => {
            const problem = observationProblem(o);
            if (problem !== undefined) problems.push(problem);
            return problem === undefined;
          });
        // Text Postgres cannot store is refused here, reading by reading; the rest of the message is kept.
        if (problems.length > 0) reject(topic, payload, 'text', problems.join('; '));
        if (observations.length === 0) return 'rejected';
        const restamped = observations.filter((o) => o.quality?.includes('time_out_of_range')).length;
        if (restamped > 0) metrics.timeOutOfRange.inc(restamped);
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
            { topic, client: delivery?.clientId, packetId: delivery?.packetId },
            'mqtt re-delivery not stored again',
          );
          return 'stored';
        }
        if (stored === 'retained_repeat') {
          metrics.mqttRetainedRepeats.inc();
          log.debug(
            { topic },
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
