import {
  type AcceptedTimeRange,
  type Observation,
  observationId,
  textProblem,
  timeRangeProblem,
} from '@fieldbeam/protocol';
import type { DeliveryOutcome, MqttDelivery, RejectEntry, RetainedState } from './outbox/outbox.js';

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
  /** The W3C trace-id of the message the readings came in, shared by all of them (`Observation.trace`). */
  trace?: string | undefined;
}

/** The last time formatted: readings arriving together mostly share their millisecond (and a Date each costs). */
let lastIsoMs = Number.NaN;
let lastIso = '';
const iso = (ms: number) => {
  if (ms !== lastIsoMs) {
    lastIso = new Date(ms).toISOString();
    lastIsoMs = ms;
  }
  return lastIso;
};

/** Epoch ms the wire's ISO form can carry (years 1970..9999). */
const MAX_TIME_MS = 253_402_300_799_999;

export interface ObservationOptions {
  /**
   * Sensor times outside this range around the receipt time are replaced by it. Leave it out while the
   * edge's own clock is not trusted (unsynced): the range is measured from that clock.
   */
  acceptedTime?: AcceptedTimeRange | undefined;
}

/**
 * Turns a reading into the canonical observation, with its deterministic id. Receipt time stands in
 * for a missing sensor time and is flagged `edge_time`; it also stands in for a sensor time that is no
 * real instant (`time_invalid`) or lies outside the accepted range (`time_out_of_range`): the value is
 * kept, and the flag says its time is the edge's. Such a time would otherwise create a database
 * partition of its own at the collector, or be refused there.
 */
export function toObservation(
  origin: Origin,
  reading: Reading,
  receivedMs: number,
  opts: ObservationOptions = {},
): Observation {
  let sensorTime = reading.timeMs;
  /** What the time is, when it is not the sensor's own. */
  let flag: string | undefined;
  if (sensorTime === undefined) flag = 'edge_time';
  else if (!Number.isInteger(sensorTime) || sensorTime < 0 || sensorTime > MAX_TIME_MS) {
    sensorTime = undefined;
    flag = 'time_invalid';
  } else if (opts.acceptedTime && timeRangeProblem(sensorTime, receivedMs, opts.acceptedTime)) {
    sensorTime = undefined;
    flag = 'time_out_of_range';
  }
  const timeMs = sensorTime ?? receivedMs;
  const time = iso(timeMs);
  const sensor = reading.sensor ?? origin.sensor;
  const given = reading.quality;
  const quality =
    given !== undefined && given.length > 0
      ? flag === undefined
        ? [...given]
        : [...given, flag]
      : flag === undefined
        ? undefined
        : [flag];
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
  if (quality !== undefined) obs.quality = quality;
  // Last, as in the schema: the id above does not depend on it.
  if (origin.trace !== undefined) obs.trace = origin.trace;
  return obs;
}

/**
 * Why an observation cannot be stored as it is, or undefined: a string (station, sensor, variable,
 * text, unit, flag) holding a NUL character or a lone surrogate, which a Postgres text column refuses.
 * Such a reading is rejected at the edge, with this reason, rather than dead-lettered later.
 */
export function observationProblem(o: Observation): string | undefined {
  // Field by field, without building a list of them: this runs for every reading.
  const problem =
    fieldProblem(o, 'station', o.station) ??
    fieldProblem(o, 'sensor', o.sensor) ??
    fieldProblem(o, 'variable', o.variable) ??
    fieldProblem(o, 'text', o.text) ??
    fieldProblem(o, 'unit', o.unit);
  if (problem !== undefined || o.quality === undefined) return problem;
  for (const q of o.quality) {
    const p = fieldProblem(o, 'quality', q);
    if (p !== undefined) return p;
  }
  return undefined;
}

/** What is wrong with one text field of an observation, in `observationProblem`'s words. */
function fieldProblem(o: Observation, field: string, value: string | undefined): string | undefined {
  const problem = value === undefined ? undefined : textProblem(value);
  return problem === undefined ? undefined : `${field} of ${JSON.stringify(o.variable)} ${problem}`;
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
 * With `retained` (an external broker's message), resolves `'retained_repeat'`, storing nothing, when
 * it is the broker's replay of the retained payload already stored from its topic.
 */
export interface MqttSink {
  submit(
    observations: Observation[],
    delivery?: MqttDelivery,
    retained?: RetainedState,
  ): Promise<DeliveryOutcome>;
}

/**
 * Where sources report input they could not use: counted and kept for an operator to inspect. The
 * entry is taken at once (its payload cut to what is kept) and written with the buffer's next commit.
 */
export interface RejectSink {
  reject(entry: RejectEntry): void;
}
