import type { SensorConfig } from '../config.js';
import { createDecoder } from '../decode/registry.js';
import type { DecodeOutcome, Decoder } from '../decode/types.js';
import type { Origin } from '../readings.js';
import { parseTopicPattern, type TopicPattern } from './topic-pattern.js';

interface CompiledSensor {
  config: SensorConfig;
  pattern: TopicPattern;
  decoder: Decoder;
}

export type SensorMatch =
  | { matched: false }
  | { matched: true; origin: Omit<Origin, 'edge' | 'source'>; outcome: DecodeOutcome };

/** Topic -> sensor -> decoded readings. First matching sensor in config order wins. Pure. */
export class SensorMap {
  private readonly sensors: CompiledSensor[];

  constructor(configs: readonly SensorConfig[]) {
    this.sensors = configs.map((config) => ({
      config,
      pattern: parseTopicPattern(config.topic),
      decoder: createDecoder(config.decoder),
    }));
  }

  /** MQTT filters to subscribe to (external broker mode). */
  filters(): string[] {
    return [...new Set(this.sensors.map((s) => s.pattern.filter))];
  }

  decode(topic: string, payload: Uint8Array, receivedMs: number): SensorMatch {
    for (const s of this.sensors) {
      const captures = s.pattern.match(topic);
      if (!captures) continue;
      const station = s.config.station ?? captures.station;
      if (!station) continue;
      const origin: Omit<Origin, 'edge' | 'source'> = { station };
      const sensor = s.config.sensor ?? captures.sensor;
      if (sensor) origin.sensor = sensor;
      if (s.config.lat !== undefined) origin.lat = s.config.lat;
      if (s.config.lon !== undefined) origin.lon = s.config.lon;
      if (s.config.alt !== undefined) origin.alt = s.config.alt;
      let outcome: DecodeOutcome;
      try {
        outcome = s.decoder({ topic, payload, captures, receivedMs });
      } catch (err) {
        // Decoders must not throw; if one does, the input is rejected rather than the agent stopped.
        outcome = { kind: 'rejected', reason: `decoder failed: ${(err as Error).message}` };
      }
      return { matched: true, origin, outcome };
    }
    return { matched: false };
  }
}
