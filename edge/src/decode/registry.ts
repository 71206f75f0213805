import type { DecoderSpec } from '@fieldbeam/protocol';
import { esphomeDecoder } from './esphome.js';
import { jsonFieldsDecoder } from './json-fields.js';
import { numberDecoder } from './number.js';
import { senmlDecoder } from './senml.js';
import { shellyDecoder } from './shelly.js';
import { tasmotaDecoder } from './tasmota.js';
import type { DecoderFamily } from './topic-conventions.js';
import type { Decoder } from './types.js';
import { zigbee2mqttDecoder } from './zigbee2mqtt.js';

/**
 * How a sensor's payloads are decoded (`sensors[].decoder`), shared with the collector's central
 * config; old camelCase spellings are renamed by the edge's loader (`config-renames.ts`); `build`
 * hands the keys to the decoders as their options.
 */
export { DecoderSpec } from '@fieldbeam/protocol';
export {
  DECODER_FAMILIES,
  type DecoderFamily,
  defaultTopicPattern,
  type TopicConvention,
} from './topic-conventions.js';

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
