import type { SensorChanges, SensorConfig } from '@fieldbeam/protocol';
import { diffSensors } from './sensor-diff.js';

/** What a reload did: the sensors it added, removed or changed, how many there are, and auto sensors kept. */
export interface ReloadOutcome {
  changes: SensorChanges;
  sensors: number;
  autoRegistered: { kept: number; dropped: number };
}

export function reloadOutcome(
  before: readonly SensorConfig[],
  after: readonly SensorConfig[],
  auto: { kept: number; dropped: number },
): ReloadOutcome {
  return { changes: diffSensors(before, after), sensors: after.length, autoRegistered: auto };
}
