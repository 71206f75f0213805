import { hash } from 'node:crypto';

/** The fields that make a reading what it is. Units, edge, receipt time and position are left out on purpose. */
export interface ObservationKey {
  source: string;
  station: string;
  sensor?: string | undefined;
  variable: string;
  /** ISO-8601 UTC with milliseconds. */
  time: string;
  value: number | null;
  text?: string | undefined;
}

/**
 * Deterministic observation id: hex SHA-256 over the canonical form of the key.
 *
 * The canonical form is a JSON array with a version tag, so a future change of form gets a new tag
 * instead of silently changing ids. JSON gives one spelling per string and the shortest round-trip
 * spelling per number (ECMA-262 Number::toString), which is the same on every machine; `-0` is
 * folded to `0` so the two never yield different ids for equal readings.
 */
export function observationId(key: ObservationKey): string {
  const value = key.value === null ? null : Object.is(key.value, -0) ? 0 : key.value;
  const canonical = JSON.stringify([
    'fb-obs-1',
    key.source,
    key.station,
    key.sensor ?? null,
    key.variable,
    key.time,
    value,
    key.text ?? null,
  ]);
  return hash('sha256', canonical, 'hex');
}
