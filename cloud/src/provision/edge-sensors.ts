/**
 * What a provisioned edge accepts from sensors: its `sensors` list and `auto_register` settings, from
 * `edge add --sensor TOPIC[=DECODER]` options or, without any, auto-registration of the common
 * firmware topics. The edge's config loader has the last word; these checks catch on the collector
 * what would otherwise only fail on the Pi at first boot.
 */

/**
 * MQTT filters of the readings each firmware publishes in its default layout (the edge's conventions,
 * edge/src/decode/topic-conventions.ts): Zigbee2MQTT devices, Tasmota telemetry, Shelly Gen1
 * (`shellies/...`) and Gen2/3 (`<id>/events/rpc`, `<id>/status/<component>`), ESPHome states.
 * Availability and text topics under them are counted as skipped by the agent, not stored.
 */
export const FIRMWARE_TOPICS: readonly string[] = [
  'zigbee2mqtt/#',
  'tele/+/SENSOR',
  'shellies/#',
  '+/events/rpc',
  '+/status/+',
  '+/sensor/+/state',
  '+/binary_sensor/+/state',
];

/** Decoders a `--sensor TOPIC=DECODER` may name; `number:VARIABLE:UNIT` is the one with options. */
const FAMILIES = ['zigbee2mqtt', 'tasmota', 'shelly', 'esphome', 'senml', 'json'] as const;

/** The edge config's sensor entry (see edge/README.md, `sensors`). */
export interface SensorEntry {
  topic: string;
  decoder: { type: string; variable?: string; unit?: string };
}

export interface SensorSetup {
  sensors: SensorEntry[];
  /** MQTT filters whose unmatched topics become sensors; empty: auto-registration off. */
  autoRegisterTopics: string[];
}

/** As the edge reads a topic pattern: `+name` one level, `#name` the rest (last only), else plain text. */
function checkPattern(topic: string, option: string): string[] {
  const levels = topic.split('/');
  levels.forEach((l, i) => {
    if (l.startsWith('#') && i !== levels.length - 1)
      throw new Error(`${option}: '#' may only be the last level of "${topic}"`);
    if (/[+#]/.test(l) && l.length > 1 && !/^[+#][A-Za-z_][A-Za-z0-9_]*$/.test(l))
      throw new Error(`${option}: level "${l}" of "${topic}" mixes a wildcard with text; use +name or #name`);
  });
  return levels;
}

function parseDecoder(text: string, option: string): SensorEntry['decoder'] {
  const [type = '', ...rest] = text.split(':');
  if (type === 'number') {
    const [variable, ...unit] = rest;
    if (!variable) throw new Error(`${option}: write the number decoder as number:VARIABLE:UNIT`);
    return { type, variable, unit: unit.join(':') };
  }
  if (!(FAMILIES as readonly string[]).includes(type) || rest.length > 0) {
    throw new Error(
      `${option}: unknown decoder "${text}"; use one of ${FAMILIES.join(', ')} or number:VARIABLE:UNIT`,
    );
  }
  return { type };
}

/**
 * `--sensor` values: `TOPIC=DECODER` is a configured sensor (TOPIC may capture `+station`);
 * a bare `TOPIC` is an MQTT filter whose topics are auto-registered (decoder inferred per topic).
 * With none, the firmware topics are auto-registered.
 */
export function sensorSetup(options: readonly string[]): SensorSetup {
  if (options.length === 0) return { sensors: [], autoRegisterTopics: [...FIRMWARE_TOPICS] };
  const sensors: SensorEntry[] = [];
  const topics: string[] = [];
  for (const text of options) {
    const option = `--sensor ${text}`;
    const eq = text.lastIndexOf('=');
    const topic = eq >= 0 ? text.slice(0, eq) : text;
    if (topic === '' || /\s/.test(topic)) throw new Error(`${option}: give an MQTT topic without spaces`);
    const levels = checkPattern(topic, option);
    if (eq < 0) {
      if (levels.some((l) => l.length > 1 && /^[+#]/.test(l)))
        throw new Error(`${option}: a topic without a decoder is an MQTT filter: use + and # without names`);
      topics.push(topic);
      continue;
    }
    const decoder = parseDecoder(text.slice(eq + 1), option);
    // The generic decoders cannot name the device: the edge needs it from the topic.
    if (
      (decoder.type === 'number' || decoder.type === 'json') &&
      !levels.some((l) => /^[+#]station$/.test(l))
    )
      throw new Error(`${option}: the ${decoder.type} decoder needs the station in the topic (+station)`);
    sensors.push({ topic, decoder });
  }
  return { sensors, autoRegisterTopics: topics };
}
