import type { SensorChanges } from '@fieldbeam/protocol';

/** The part of a sensor's config a reload compares: its topic and everything else about it. */
export interface ComparableSensor {
  readonly topic: string;
}

/**
 * What applying `after` in place of `before` changes, by topic filter (a topic is one sensor: the
 * first sensor of a topic routes it). A sensor whose decoder, station or options differ is `changed`.
 */
export function diffSensors(
  before: readonly ComparableSensor[],
  after: readonly ComparableSensor[],
): SensorChanges {
  const old = byTopic(before);
  const now = byTopic(after);
  const added = [...now.keys()].filter((t) => !old.has(t));
  const removed = [...old.keys()].filter((t) => !now.has(t));
  const changed = [...now.keys()].filter((t) => {
    const was = old.get(t);
    return was !== undefined && stable(was) !== stable(now.get(t) as ComparableSensor);
  });
  return { added, removed, changed };
}

function byTopic(sensors: readonly ComparableSensor[]): Map<string, ComparableSensor> {
  const m = new Map<string, ComparableSensor>();
  for (const s of sensors) if (!m.has(s.topic)) m.set(s.topic, s);
  return m;
}

/** JSON with object keys sorted at every level, so that key order in the YAML changes nothing. */
function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}
