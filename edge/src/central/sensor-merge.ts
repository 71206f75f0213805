import type { AutoRegisterConfig, CentralSensorConfig, SensorConfig } from '@fieldbeam/protocol';

/** The sensor config of an edge's own YAML file. */
export interface LocalSensors {
  readonly sensors: readonly SensorConfig[];
  readonly autoRegister: AutoRegisterConfig;
}

/** The central values in force: fleet-wide defaults (`all`) and this edge's own key (`edge.<id>`). */
export interface CentralValues {
  readonly all?: CentralSensorConfig | undefined;
  readonly own?: CentralSensorConfig | undefined;
}

export interface MergedSensors {
  /** In match order: the first sensor whose topic pattern matches a message decodes it. */
  readonly sensors: readonly SensorConfig[];
  readonly autoRegister: AutoRegisterConfig;
  /** The sensors of `sensors` that come from central config (by identity), for their status origin. */
  readonly central: ReadonlySet<SensorConfig>;
  /** Central sensors left out because a sensor of higher precedence has the same topic. */
  readonly shadowed: readonly { topic: string; key: 'all' | 'own' }[];
}

/**
 * The sensors an edge runs with. Precedence, highest first: the local YAML, the edge's own central
 * key (`edge.<id>`), the fleet-wide key (`all`). A sensor whose topic is written identically in a
 * source of higher precedence is left out; the rest keep that order, so where two different patterns
 * match one topic the higher source decodes it too (the first match wins, see `SensorMap`).
 * `auto_register` is the own key's when it sets one, else `all`'s, else the YAML's: it is one
 * setting, and an operator who writes it centrally means it to apply.
 */
export function mergeSensors(local: LocalSensors, central: CentralValues): MergedSensors {
  const topics = new Set(local.sensors.map((s) => s.topic));
  const sensors: SensorConfig[] = [...local.sensors];
  const fromCentral = new Set<SensorConfig>();
  const shadowed: { topic: string; key: 'all' | 'own' }[] = [];
  for (const key of ['own', 'all'] as const) {
    for (const s of central[key]?.sensors ?? []) {
      if (topics.has(s.topic)) {
        shadowed.push({ topic: s.topic, key });
        continue;
      }
      topics.add(s.topic);
      sensors.push(s);
      fromCentral.add(s);
    }
  }
  return {
    sensors,
    autoRegister: central.own?.auto_register ?? central.all?.auto_register ?? local.autoRegister,
    central: fromCentral,
    shadowed,
  };
}
