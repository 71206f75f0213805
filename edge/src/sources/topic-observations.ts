import type { AcceptedTimeRange, Observation } from '@fieldbeam/protocol';
import { BoundedLabels } from '../bounded-labels.js';
import type { EdgeMetrics } from '../metrics.js';
import { CLOCK_UNSYNCED } from '../outbox/outbox.js';
import { type Origin, observationProblem, toObservation } from '../readings.js';
import type { SensorMap } from './sensor-map.js';

/**
 * What a topic and payload come to, before anything is stored: no sensor matched, a rejection (its
 * kind and reason), nothing to store, or observations (with the reason some readings were refused).
 */
export type TopicDecode =
  | { kind: 'unmatched' }
  | { kind: 'rejected'; reject: string; reason: string }
  | { kind: 'ignored' }
  | { kind: 'observations'; observations: Observation[]; refused?: string };

export interface TopicObservationsDeps {
  edge: string;
  /** Read on every message so a reload takes effect at once. */
  sensors: () => SensorMap;
  metrics: EdgeMetrics;
  /** Messages that decode to more readings are rejected whole. */
  maxReadingsPerMessage: number;
  /** True while the wall clock is not synchronised: receipt-time readings are flagged for re-stamping. */
  clockUnsynced: () => boolean;
  acceptedTime?: AcceptedTimeRange;
}

/** First topic levels with a series of their own in `fb_edge_unmatched_topic_total`; the rest are `other`. */
const UNMATCHED_PREFIXES = 32;

/**
 * Topic matching, decoding and validation shared by every topic-addressed intake (MQTT, HTTP): the
 * same topic and payload make the same observations, ids included, whichever way they came. The
 * observations' `source` is `mqtt` for both: it names the sensor's addressing (topics), and is part
 * of the id. `channel` labels the counters (`fb_edge_no_reading_total{source}`).
 */
export function createTopicObservations(deps: TopicObservationsDeps, channel: string) {
  const { metrics } = deps;
  const skipped = metrics.skipped.labels(channel);
  const unmatchedPrefix = new BoundedLabels(UNMATCHED_PREFIXES);
  return function decodeTopic(
    topic: string,
    payload: Uint8Array,
    receivedMs: number,
    /** The time of readings whose payload has none, when the carrier knows it (a network server's receipt). */
    carrierTimeMs?: number,
    /** The message's trace-id, given to each of its observations. */
    trace?: string,
  ): TopicDecode {
    const match = deps.sensors().decode(topic, payload, receivedMs);
    if (!match.matched) {
      metrics.unmatched.inc({ prefix: unmatchedPrefix.of(topic.split('/', 1)[0] ?? '') });
      return { kind: 'unmatched' };
    }
    const { outcome } = match;
    switch (outcome.kind) {
      case 'rejected':
        return { kind: 'rejected', reject: 'decode', reason: outcome.reason };
      case 'status':
      case 'ignored':
        return { kind: 'ignored' };
      case 'readings': {
        if (outcome.skipped.length > 0) skipped.inc(outcome.skipped.length);
        if (outcome.readings.length === 0) return { kind: 'ignored' };
        if (outcome.readings.length > deps.maxReadingsPerMessage) {
          return {
            kind: 'rejected',
            reject: 'too_many_readings',
            reason: `${outcome.readings.length} readings in one message exceed mqtt.max_readings_per_message (${deps.maxReadingsPerMessage})`,
          };
        }
        const origin = {
          ...(match.origin as Omit<Origin, 'edge' | 'source'>),
          source: 'mqtt',
          edge: deps.edge,
          trace,
        };
        const unsynced = deps.clockUnsynced();
        // The accepted range is measured from the edge's clock, so it waits until that clock is synced.
        const options = { acceptedTime: unsynced ? undefined : deps.acceptedTime };
        // One pass, no intermediate arrays: this runs for every message.
        let problems: string[] | undefined;
        let restamped = 0;
        const observations: Observation[] = [];
        for (const r of outcome.readings) {
          const timed =
            r.timeMs === undefined && carrierTimeMs !== undefined ? { ...r, timeMs: carrierTimeMs } : r;
          const o = toObservation(
            origin,
            unsynced && timed.timeMs === undefined
              ? { ...timed, quality: [...(timed.quality ?? []), CLOCK_UNSYNCED] }
              : timed,
            receivedMs,
            options,
          );
          const problem = observationProblem(o);
          if (problem !== undefined) {
            problems ??= [];
            problems.push(problem);
            continue;
          }
          if (o.quality?.includes('time_out_of_range')) restamped++;
          observations.push(o);
        }
        if (restamped > 0) metrics.timeOutOfRange.inc(restamped);
        // Text Postgres cannot store is refused here, reading by reading; the rest of the message is kept.
        const refused = problems?.join('; ');
        if (observations.length === 0) return { kind: 'rejected', reject: 'text', reason: refused ?? '' };
        return refused === undefined
          ? { kind: 'observations', observations }
          : { kind: 'observations', observations, refused };
      }
    }
  };
}
export type TopicObservations = ReturnType<typeof createTopicObservations>;
