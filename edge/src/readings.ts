import { type Observation, observationId } from '@fieldbeam/protocol';
import type { DeliveryOutcome, MqttDelivery, RejectEntry } from './outbox/outbox.js';

/**
 * A reading as a decoder or a source yields it, before it becomes an observation.
 * Values are already in the canonical unit of their variable.
 */
export interface Reading {
  /** CF standard name, or a namespaced name such as `iss:USLAB000058`. */
  variable: string;
  value: number | null;
  /** The raw reading when it is not numeric. */
  text?: string;
  unit: string;
  /** Sensor time in epoch ms, when the payload carries one. */
  timeMs?: number;
  /** Sub-device inside a station's payload (e.g. one DS18B20 address). */
  sensor?: string;
  quality?: string[];
}

/** Where an observation comes from: filled in by the source that took the reading. */
export interface Origin {
  source: string;
  edge: string;
  station: string;
  sensor?: string;
  lat?: number;
  lon?: number;
  alt?: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Turns a reading into the canonical observation, with its deterministic id. Receipt time stands in for a missing sensor time and is flagged. */
export function toObservation(origin: Origin, reading: Reading, receivedMs: number): Observation {
  const timeMs = reading.timeMs ?? receivedMs;
  const time = iso(timeMs);
  const sensor = reading.sensor ?? origin.sensor;
  const quality = [...(reading.quality ?? []), ...(reading.timeMs === undefined ? ['edge_time'] : [])];
  const obs: Observation = {
    id: observationId({
      source: origin.source,
      station: origin.station,
      sensor,
      variable: reading.variable,
      time,
      value: reading.value,
      text: reading.text,
    }),
    source: origin.source,
    edge: origin.edge,
    station: origin.station,
    variable: reading.variable,
    value: reading.value,
    unit: reading.unit,
    time,
    received: timeMs === receivedMs ? time : iso(receivedMs),
  };
  if (sensor !== undefined) obs.sensor = sensor;
  if (reading.text !== undefined) obs.text = reading.text;
  if (origin.lat !== undefined) obs.lat = origin.lat;
  if (origin.lon !== undefined) obs.lon = origin.lon;
  if (origin.alt !== undefined) obs.alt = origin.alt;
  if (quality.length > 0) obs.quality = quality;
  return obs;
}

/**
 * Where sources hand their observations. `submit` resolves only once they are durably committed
 * (that is when an MQTT QoS 1 PUBACK may go out), and rejects when the buffer refuses them
 * (`block` policy while full), so the source can hold back its acknowledgement.
 */
export interface ObservationSink {
  submit(observations: Observation[]): Promise<void>;
}

/**
 * Where MQTT intake hands its observations: as {@link ObservationSink}, and for a QoS 1/2 message with
 * its `delivery`, remembered in the same commit. Resolves `'duplicate'`, storing nothing, when the
 * message re-delivers one already committed: acknowledging it again is then all that is left to do.
 */
export interface MqttSink {
  submit(observations: Observation[], delivery?: MqttDelivery): Promise<DeliveryOutcome>;
}

/** Where sources report input they could not use: counted and kept for an operator to inspect. */
export interface RejectSink {
  reject(entry: RejectEntry): void;
}

/**
 * A {@link RejectSink} for a source that acknowledges its input (MQTT QoS 1): resolves once the entry
 * is kept, never rejects.
 */
export interface AckedRejectSink {
  reject(entry: RejectEntry): Promise<void>;
}
