import type { SensorConfig } from '../config.js';
import { createDecoder } from '../decode/registry.js';
import type { DecodeOutcome, Decoder } from '../decode/types.js';
import type { Origin } from '../readings.js';
import type { AutoRegistry } from './auto-register.js';
import { parseTopicPattern, type TopicPattern } from './topic-pattern.js';

interface CompiledSensor {
  config: SensorConfig;
  pattern: TopicPattern;
  decoder: Decoder;
}

/** Which decoder a topic goes to, with the captures of the pattern and the ids the config fixes. */
export interface SensorRoute {
  decoder: Decoder;
  captures: Readonly<Record<string, string>>;
  station?: string;
  sensor?: string;
  config: SensorConfig;
}

export type SensorMatch =
  | { matched: false }
  | { matched: true; origin?: Omit<Origin, 'edge' | 'source'>; outcome: DecodeOutcome };

/**
 * Topic -> sensor -> decoded readings. The first matching sensor in config order wins; a topic none
 * matches goes to the auto-registry when there is one (`auto_register`), so configured sensors
 * always win over auto-registered ones. No I/O.
 */
export class SensorMap {
  private readonly sensors: CompiledSensor[];

  constructor(
    configs: readonly SensorConfig[],
    private readonly auto?: AutoRegistry,
  ) {
    this.sensors = configs.map((config) => ({
      config,
      pattern: parseTopicPattern(config.topic),
      decoder: createDecoder(config.decoder),
    }));
  }

  /** MQTT filters to subscribe to (external broker mode). */
  filters(): string[] {
    return [...new Set([...this.sensors.map((s) => s.pattern.filter), ...(this.auto?.filters() ?? [])])];
  }

  route(topic: string): SensorRoute | undefined {
    for (const s of this.sensors) {
      const captures = s.pattern.match(topic);
      if (!captures) continue;
      const route: SensorRoute = { decoder: s.decoder, captures, config: s.config };
      if (s.config.station) route.station = s.config.station;
      const sensor = s.config.sensor ?? captures.sensor;
      if (sensor) route.sensor = sensor;
      return route;
    }
    return undefined;
  }

  /**
   * Decodes a message. The station is, in order: fixed in the config, named by the payload's own
   * convention (zigbee2mqtt friendly name, Shelly `src`, Tasmota topic), or captured as `+station`.
   * Readings without any station are rejected: an observation must say where it was taken.
   */
  decode(topic: string, payload: Uint8Array, receivedMs: number): SensorMatch {
    const route = this.route(topic);
    if (!route) return this.auto ? this.auto.decode(topic, payload, receivedMs) : { matched: false };
    let outcome: DecodeOutcome;
    try {
      outcome = route.decoder({ topic, payload, captures: route.captures, receivedMs });
    } catch (err) {
      // Decoders must not throw; if one does, the input is rejected rather than the agent stopped.
      return {
        matched: true,
        outcome: { kind: 'rejected', reason: `decoder failed: ${(err as Error).message}` },
      };
    }
    if (outcome.kind !== 'readings') return { matched: true, outcome };
    const station = route.station ?? outcome.station ?? route.captures.station;
    if (!station) {
      return {
        matched: true,
        outcome: {
          kind: 'rejected',
          reason: 'no station: set sensors[].station or capture +station in the topic',
        },
      };
    }
    const origin: Omit<Origin, 'edge' | 'source'> = { station };
    if (route.sensor) origin.sensor = route.sensor;
    const { lat, lon, alt } = route.config;
    if (lat !== undefined) origin.lat = lat;
    if (lon !== undefined) origin.lon = lon;
    if (alt !== undefined) origin.alt = alt;
    return { matched: true, origin, outcome };
  }
}
