/**
 * Each family's conventional MQTT topics, and where its station and sensor ids come from. The
 * family decoders apply these themselves (`DecodeOutcome.station`), because for some the id is in
 * the payload (Shelly `src`) or depends on it (a zigbee2mqtt name with `/`); `stationOf` covers the
 * generic decoders, which do not name a station.
 */

import type { DecoderFamily } from '@fieldbeam/protocol';

export { DECODER_FAMILIES, type DecoderFamily } from '@fieldbeam/protocol';

export interface TopicConvention {
  /**
   * Topic patterns for the family's default layout, in the config's syntax (`+station` captures one
   * level, `#station` the rest). Empty for the generic decoders, which have no convention.
   */
  patterns: readonly string[];
  /** Where the station id comes from. */
  station: string;
  /** Where the sensor id comes from. */
  sensor: string;
  /** The station for a topic when the decoder names none. */
  stationOf(topic: string): string | undefined;
}

const parent = (topic: string) => {
  const i = topic.lastIndexOf('/');
  return i > 0 ? topic.slice(0, i) : undefined;
};

const CONVENTIONS: Readonly<Record<DecoderFamily, TopicConvention>> = {
  number: {
    patterns: [],
    station: 'the topic without its last level (`kitchen/temperature` -> `kitchen`)',
    sensor: 'none; the variable is `mqtt:<last level>` unless configured',
    stationOf: parent,
  },
  json: {
    patterns: [],
    station: 'the whole topic',
    sensor: 'none',
    stationOf: (topic) => topic,
  },
  senml: {
    patterns: [],
    station: 'the whole topic',
    sensor: 'the resolved SenML name (bn + n) of each record',
    stationOf: (topic) => topic,
  },
  zigbee2mqtt: {
    // `#station` over-captures attribute and availability topics (`z1/power`): prefer the outcome's station.
    patterns: ['zigbee2mqtt/#station'],
    station:
      'the friendly name: the topic after the base topic, without an attribute or /availability level; may contain "/" and spaces',
    sensor: 'none',
    stationOf: (topic) => topic.split('/').slice(1).join('/') || undefined,
  },
  tasmota: {
    patterns: ['tele/+station/SENSOR', 'tele/+station/STATE', 'tele/+station/LWT', 'stat/+station/STATUS10'],
    station:
      'the Tasmota Topic: the level before the type, or before `tele`/`stat` when FullTopic puts the prefix after it',
    sensor:
      'each sensor object: its Id (DS18B20 address) or its key (BME280, DS18B20-1, a ZbReceived device)',
    stationOf: (topic) => topic.split('/').at(-2),
  },
  shelly: {
    patterns: ['shellies/+station/#', '+station/events/rpc', '+station/status/+', '+station/online'],
    station: 'Gen1: the id in shellies/<id>/...; Gen2/3: `src` of events/rpc, else the topic prefix',
    sensor: 'the component: `switch:0`, `temperature:0`, Gen1 `relay/0` as `relay:0`',
    stationOf: (topic) => topic.split('/')[topic.startsWith('shellies/') ? 1 : 0],
  },
  esphome: {
    patterns: [
      '+station/sensor/+/state',
      '+station/binary_sensor/+/state',
      '+station/text_sensor/+/state',
      '+station/status',
    ],
    station: 'the node topic prefix (everything before /<component>/<object_id>/state or /status)',
    sensor: 'none; the variable is `esphome:<object_id>` or the CF name of its discovery device_class',
    stationOf: (topic) => topic.split('/')[0],
  },
};

/** The conventional topics of a family and how its station and sensor ids are found. */
export function defaultTopicPattern(family: DecoderFamily): TopicConvention {
  return CONVENTIONS[family];
}
