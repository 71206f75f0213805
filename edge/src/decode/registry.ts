import { z } from 'zod';
import { esphomeDecoder } from './esphome.js';
import { jsonFieldsDecoder } from './json-fields.js';
import { numberDecoder } from './number.js';
import { senmlDecoder } from './senml.js';
import { shellyDecoder } from './shelly.js';
import { tasmotaDecoder } from './tasmota.js';
import { isTimeZone } from './time.js';
import type { DecoderFamily } from './topic-conventions.js';
import type { Decoder } from './types.js';
import { zigbee2mqttDecoder } from './zigbee2mqtt.js';

export {
  DECODER_FAMILIES,
  type DecoderFamily,
  defaultTopicPattern,
  type TopicConvention,
} from './topic-conventions.js';

const VariableUnit = z.object({ variable: z.string().min(1), unit: z.string() });
const TimeZone = z.string().refine(isTimeZone, 'expected an IANA time zone such as "Europe/Berlin" or "UTC"');
const TempUnit = z.enum(['C', 'F']);

/**
 * How a sensor's payloads are decoded, as written in the agent's config (`sensors[].decoder`): keys
 * in snake_case like the rest of the config (old camelCase spellings are renamed by the loader, see
 * `config-renames.ts`); `build` hands them to the decoders as their options.
 */
export const DecoderSpec = z.discriminatedUnion('type', [
  z.object({ type: z.literal('number'), variable: z.string().min(1), unit: z.string() }).strict(),
  z
    .object({
      type: z.literal('json'),
      fields: z.record(z.string(), VariableUnit).optional(),
      time: z.string().min(1).optional(),
      time_zone: TimeZone.optional(),
    })
    .strict(),
  z.object({ type: z.literal('senml') }).strict(),
  z
    .object({
      type: z.literal('zigbee2mqtt'),
      base_topic: z.string().min(1).optional(),
      units: z.record(z.string(), z.string()).optional(),
      time_zone: TimeZone.optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('tasmota'),
      time_zone: TimeZone.optional(),
      temperature_unit: TempUnit.optional(),
    })
    .strict(),
  z.object({ type: z.literal('shelly'), temperature_unit: TempUnit.optional() }).strict(),
  z
    .object({
      type: z.literal('esphome'),
      sensors: z
        .record(
          z.string(),
          z.object({ variable: z.string().min(1).optional(), unit: z.string().optional() }).strict(),
        )
        .optional(),
      learn_from_discovery: z.boolean().optional(),
    })
    .strict(),
]);
export type DecoderSpec = z.infer<typeof DecoderSpec>;

export function createDecoder(spec: DecoderSpec): Decoder {
  return guarded(spec.type, build(spec));
}

function build(spec: DecoderSpec): Decoder {
  switch (spec.type) {
    case 'number':
      return numberDecoder(spec);
    case 'json':
      return jsonFieldsDecoder({ fields: spec.fields, time: spec.time, timeZone: spec.time_zone });
    case 'senml':
      return senmlDecoder();
    case 'zigbee2mqtt':
      return zigbee2mqttDecoder({ baseTopic: spec.base_topic, units: spec.units, timeZone: spec.time_zone });
    case 'tasmota':
      return tasmotaDecoder({ timeZone: spec.time_zone, temperatureUnit: spec.temperature_unit });
    case 'shelly':
      return shellyDecoder({ temperatureUnit: spec.temperature_unit });
    case 'esphome':
      return esphomeDecoder({ sensors: spec.sensors, learnFromDiscovery: spec.learn_from_discovery });
  }
}

/**
 * A family's decoder with its conventions and no config: `number` takes its variable from the last
 * topic level and has no unit, `json` takes every numeric field. For `decode --format` and auto-registration.
 */
export function createDefaultDecoder(family: DecoderFamily, opts: { timeZone?: string } = {}): Decoder {
  switch (family) {
    case 'number':
      return guarded(family, numberDecoder());
    case 'json':
      return guarded(family, jsonFieldsDecoder(opts));
    case 'zigbee2mqtt':
    case 'tasmota':
      return createDecoder({ type: family, time_zone: opts.timeZone });
    default:
      return createDecoder({ type: family });
  }
}

/** Decoders are written not to throw; this turns a bug that slips through into a rejection with its reason. */
function guarded(family: string, decoder: Decoder): Decoder {
  return (input) => {
    try {
      return decoder(input);
    } catch (err) {
      return { kind: 'rejected', reason: `${family} decoder failed: ${(err as Error).message}` };
    }
  };
}
