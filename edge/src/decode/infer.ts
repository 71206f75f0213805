import {
  createDefaultDecoder,
  DECODER_FAMILIES,
  type DecoderFamily,
  defaultTopicPattern,
} from './registry.js';
import type { DecodeInput, DecodeOutcome, Decoder } from './types.js';

/**
 * Which decoder family a message on a topic that no sensor names belongs to (`auto_register`).
 * The topic decides first, by the firmware conventions that carry readings (topic-conventions.ts):
 * `zigbee2mqtt/<name>[/<attribute>]`, Tasmota `tele|stat/<topic>/SENSOR|STATE|STATUS8|STATUS10`
 * (either FullTopic order), Shelly `shellies/<id>/...`, `<prefix>/events/rpc` and
 * `<prefix>/status/<component>:<n>`, ESPHome `<node>/<component>/<object_id>/state`, and Home
 * Assistant discovery (`homeassistant/.../config`, read by the ESPHome decoder to learn units).
 * Otherwise the payload decides: a JSON array or CBOR is SenML, a JSON object is SenML's draft
 * `{"e":[...]}` or else flat/nested JSON (every numeric leaf), anything else a plain number.
 * Availability topics (`LWT`, `online`, `status`) are not singled out: they carry no reading.
 */
export function candidateFamilies(topic: string, payload: Uint8Array): DecoderFamily[] {
  const firmware = firmwareFamily(topic.split('/'));
  const generic = payloadFamilies(payload);
  return firmware === undefined ? generic : [firmware, ...generic.filter((f) => f !== firmware)];
}

const TASMOTA_TYPES = new Set(['SENSOR', 'STATE', 'STATUS8', 'STATUS10']);
const TASMOTA_PREFIXES = new Set(['tele', 'stat']);
/** ESPHome components whose state is a number (`binary_sensor`, `switch` ... are states, `light` JSON). */
const ESPHOME_COMPONENTS = new Set(['sensor', 'number']);

function firmwareFamily(levels: string[]): DecoderFamily | undefined {
  const n = levels.length;
  const first = levels[0] ?? '';
  const last = levels[n - 1] ?? '';
  if (first === 'homeassistant' && last === 'config') return 'esphome';
  if (first === 'zigbee2mqtt' && n >= 2) return 'zigbee2mqtt';
  if (first === 'tasmota' && levels[1] === 'discovery') return 'tasmota';
  if (TASMOTA_TYPES.has(last) && levels.slice(0, -1).some((l) => TASMOTA_PREFIXES.has(l))) return 'tasmota';
  if (first === 'shellies' && n >= 3) return 'shelly';
  if (n >= 3 && levels[n - 2] === 'events' && last === 'rpc') return 'shelly';
  if (n >= 3 && levels[n - 2] === 'status' && /^[a-z0-9_]+:\d+$/.test(last)) return 'shelly';
  if (n >= 4 && last === 'state' && ESPHOME_COMPONENTS.has(levels[n - 3] ?? '')) return 'esphome';
  if (n >= 5 && last === 'state' && levels[n - 4] === 'climate') return 'esphome';
  return undefined;
}

function payloadFamilies(payload: Uint8Array): DecoderFamily[] {
  const first = payload.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
  if (first === undefined) return ['number'];
  if (first === 0x5b /* [ */ || (first >= 0x80 && first <= 0x9f) /* CBOR array */) return ['senml'];
  if (first === 0x7b /* { */) return ['senml', 'json'];
  return ['number'];
}

/** One decoder per family with its default conventions, shared by every auto-registered sensor. */
export type FamilyDecoders = Readonly<Record<DecoderFamily, Decoder>>;

export function createFamilyDecoders(opts: { timeZone?: string } = {}): FamilyDecoders {
  return Object.fromEntries(DECODER_FAMILIES.map((f) => [f, createDefaultDecoder(f, opts)])) as Record<
    DecoderFamily,
    Decoder
  >;
}

export type ReadingsOutcome = Extract<DecodeOutcome, { kind: 'readings' }>;

export type Inference =
  /** The family whose decoder found at least one numeric reading, and the station the topic or payload names. */
  | { ok: true; family: DecoderFamily; station: string; outcome: ReadingsOutcome }
  /** Why nothing numeric could be inferred (for logs; the message counts as unmatched). */
  | { ok: false; reason: string };

/**
 * Decodes a message by the families `candidateFamilies` proposes (or only `family`), in order. A
 * family's rejection passes the message to the next candidate; its `ignored` or `status` answer is
 * final (the decoder knows the message: discovery, commands, availability), and so are readings
 * without a number (a state such as `ON` does not make a sensor). The station is the one the
 * decoder names, else the family's topic convention (json/senml: the topic, number: its parent).
 */
export function inferReadings(
  input: DecodeInput,
  decoders: FamilyDecoders,
  family?: DecoderFamily,
): Inference {
  const families = family === undefined ? candidateFamilies(input.topic, input.payload) : [family];
  let reason = 'no decoder applies';
  for (const f of families) {
    const outcome = decoders[f](input);
    if (outcome.kind === 'rejected') {
      reason = `${f}: ${outcome.reason}`;
      continue;
    }
    if (outcome.kind === 'ignored') return { ok: false, reason: `${f}: ${outcome.reason}` };
    if (outcome.kind === 'status') return { ok: false, reason: `${f}: availability (${outcome.state})` };
    if (!outcome.readings.some((r) => r.value !== null))
      return { ok: false, reason: `${f}: no numeric reading in the payload` };
    const station = outcome.station ?? defaultTopicPattern(f).stationOf(input.topic);
    if (station === undefined || station === '')
      return { ok: false, reason: `${f}: the topic names no station (it needs at least two levels)` };
    return { ok: true, family: f, station, outcome };
  }
  return { ok: false, reason };
}
