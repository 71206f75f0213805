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
  /** When its newest reading was received (epoch ms), or null: one number per sensor, set per message. */
  lastReadingMs: number | null;
}

/** A configured sensor and when its newest reading was received. */
export interface SensorReadingState {
  readonly config: SensorConfig;
  readonly lastReadingMs: number | null;
}

/** Which decoder a topic goes to, with the captures of the pattern and the ids the config fixes. */
export interface SensorRoute {
  decoder: Decoder;
  captures: Readonly<Record<string, string>>;
  station?: string;
  sensor?: string;
  config: SensorConfig;
}

interface Found {
  route: SensorRoute;
  compiled: CompiledSensor;
}

/**
 * Topics whose match is kept: at most this many (all are let go when full, so a flood of new topics
 * costs a match each, as without the cache), each at most this long.
 */
const FOUND_MAX = 1024;
const FOUND_MAX_TOPIC = 256;

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
  /** The match of each topic seen lately (`find`); a new map (a reload) starts with none. */
  private readonly found = new Map<string, Found | null>();

  /** `previous`: the map this one replaces (reload), whose sensors' last reading times carry over by topic. */
  constructor(
    configs: readonly SensorConfig[],
    private readonly auto?: AutoRegistry,
    previous?: SensorMap,
  ) {
    const last = new Map(previous?.sensors.map((s) => [s.config.topic, s.lastReadingMs]));
    this.sensors = configs.map((config) => ({
      config,
      pattern: parseTopicPattern(config.topic),
      decoder: createDecoder(config.decoder),
      lastReadingMs: last.get(config.topic) ?? null,
    }));
  }

  /** The configured sensors in order, with their last reading times (status). */
  states(): SensorReadingState[] {
    return this.sensors.map((s) => ({ config: s.config, lastReadingMs: s.lastReadingMs }));
  }

  /** MQTT filters to subscribe to (external broker mode). */
  filters(): string[] {
    return [...new Set([...this.sensors.map((s) => s.pattern.filter), ...(this.auto?.filters() ?? [])])];
  }

  route(topic: string): SensorRoute | undefined {
    return this.find(topic)?.route;
  }

  private find(topic: string): Found | undefined {
    // Sensors publish on few topics, again and again: each one's match is kept (null: none matched).
    const cached = this.found.get(topic);
    if (cached !== undefined) return cached ?? undefined;
    const found = this.match(topic);
    if (topic.length <= FOUND_MAX_TOPIC) {
      if (this.found.size >= FOUND_MAX) this.found.clear();
      this.found.set(topic, found ?? null);
    }
    return found;
  }

  private match(topic: string): Found | undefined {
    for (const s of this.sensors) {
      const captures = s.pattern.match(topic);
      if (!captures) continue;
      // Shared by every message on the topic (see `find`): frozen, so no decoder can change it for the next.
      const route: SensorRoute = { decoder: s.decoder, captures: Object.freeze(captures), config: s.config };
      if (s.config.station) route.station = s.config.station;
      const sensor = s.config.sensor ?? captures.sensor;
      if (sensor) route.sensor = sensor;
      return { route, compiled: s };
    }
    return undefined;
  }

  /**
   * Decodes a message. The station is, in order: fixed in the config, named by the payload's own
   * convention (zigbee2mqtt friendly name, Shelly `src`, Tasmota topic), or captured as `+station`.
   * Readings without any station are rejected: an observation must say where it was taken.
   */
  decode(topic: string, payload: Uint8Array, receivedMs: number): SensorMatch {
    const found = this.find(topic);
    if (!found) return this.auto ? this.auto.decode(topic, payload, receivedMs) : { matched: false };
    const { route, compiled } = found;
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
    if (outcome.readings.length > 0) compiled.lastReadingMs = receivedMs;
    return { matched: true, origin, outcome };
  }
}
