import type { Reading } from '../readings.js';

/** What a payload decoder is given. */
export interface DecodeInput {
  topic: string;
  payload: Uint8Array;
  /** Named captures of the sensor's topic pattern (`+station` -> `{ station: 'greenhouse' }`). */
  captures: Readonly<Record<string, string>>;
  receivedMs: number;
}

/** A field in the payload that carried no usable reading (`nan`, `unknown`, battery -1, ...). */
export interface SkippedField {
  field: string;
  reason: string;
}

/**
 * What one message decodes to. `station` is the device the topic or payload names by the family's
 * own convention (zigbee2mqtt friendly name, Tasmota topic, Shelly `src`, ESPHome node). A station
 * fixed in config wins over it; it wins over a topic-pattern capture, because the decoder knows
 * the firmware's layout (a `zigbee2mqtt/#station` capture of `z1/power` is device `z1`).
 */
export type DecodeOutcome =
  /** Zero or more readings; `skipped` lists the "no reading" markers seen. */
  | { kind: 'readings'; readings: Reading[]; skipped: SkippedField[]; station?: string }
  /** Availability / LWT / birth messages: device state, not a reading. `online` / `offline` when known. */
  | { kind: 'status'; state: string; station?: string }
  /** A message this decoder knows and deliberately does not turn into readings (e.g. discovery config). */
  | { kind: 'ignored'; reason: string }
  /** Input that is malformed for this decoder; `reason` tells an operator what to fix. */
  | { kind: 'rejected'; reason: string };

/** A pure function from one MQTT message to readings. Must never throw. */
export type Decoder = (input: DecodeInput) => DecodeOutcome;
