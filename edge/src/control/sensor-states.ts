import type { SensorConfig, SensorState } from '@fieldbeam/protocol';
import type { AutoRegisterStatus } from '../sources/auto-register.js';

const cut = (s: string, n: number) => (s.length > n ? s.slice(0, n) : s);

/**
 * Every sensor of the agent as `SensorState`s: the configured ones (with their origin, local YAML or
 * central config) first, then the auto-registered ones. `lastReading(topic)` gives the newest reading
 * time of a sensor when the agent knows it (null otherwise).
 */
export function sensorStates(
  configured: readonly { sensor: SensorConfig; origin: 'local' | 'central' }[],
  auto: AutoRegisterStatus,
  lastReading: (topic: string) => string | null = () => null,
): SensorState[] {
  return [
    ...configured.map(({ sensor, origin }) => ({
      topic: cut(sensor.topic, 256),
      decoder: cut(sensor.decoder.type, 64),
      ...(sensor.station !== undefined ? { station: cut(sensor.station, 128) } : {}),
      origin,
      lastReadingTime: lastReading(sensor.topic),
    })),
    ...auto.sensors.map((a) => ({
      topic: cut(a.topic, 256),
      decoder: cut(a.family, 64),
      station: cut(a.station, 128),
      origin: 'auto' as const,
      lastReadingTime: lastReading(a.topic),
    })),
  ];
}
