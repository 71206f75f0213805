/**
 * Every sample of the payload corpus (test/fixtures/payloads) that a
 * family decoder here handles, checked against the corpus's own expectations: numeric fields appear
 * as readings with that value (converted to the canonical unit by units.ts), "no reading" values are
 * skipped, states are text readings, availability is a status, and a UTC timestamp is the reading time.
 * Where a sample cannot match by design, it is listed below with the reason.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Reading } from '../readings.js';
import { DecodeOutcomeSchema } from './outcome-schema.js';
import { createDefaultDecoder, type DecoderFamily } from './registry.js';
import { parseTime } from './time.js';
import type { DecodeOutcome } from './types.js';
import { toCanonical } from './units.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const FIXTURES = resolve(REPO, 'test/fixtures/payloads');
const RECEIVED_MS = Date.UTC(2026, 0, 1);

interface Field {
  name: string;
  value: unknown;
  unit: string | null;
  time?: string | null;
  id?: string;
}
interface Sample {
  topic: string;
  payload: string;
  notes?: string;
  expected: { fields: Field[]; timestamp: string | null };
}

/** Samples whose outcome is deliberately not readings-as-expected. Key: `<file>[<index>]`. */
const SAMPLE_EXCEPTIONS: Readonly<Record<string, { kind: DecodeOutcome['kind']; why: string }>> = {
  'tasmota[7]': {
    kind: 'rejected',
    why: '5.x doc fragment without outer braces and with a trailing comma: not a JSON document; the corpus asks to reject/flag it',
  },
  'tasmota[20]': {
    kind: 'rejected',
    why: 'doc example truncated (3 opening braces, 2 closing): malformed JSON is rejected',
  },
  'edge_cases[1]': {
    kind: 'rejected',
    why: 'spliced MQTT packet: invalid UTF-8 and invalid JSON, dropped with a reason',
  },
  'edge_cases[2]': {
    kind: 'rejected',
    why: 'spliced MQTT packet: invalid UTF-8 and invalid JSON, dropped with a reason',
  },
  'esphome[10]': {
    kind: 'ignored',
    why: 'discovery config: ignored as a message; its unit is learned for the state topic',
  },
  'edge_cases[0]': { kind: 'ignored', why: 'Home Assistant discovery config (Latin-1 °): not a reading' },
  'edge_cases[6]': {
    kind: 'ignored',
    why: 'flattened `update` object: OTA metadata, left out as in JSON state form',
  },
  'shelly[1]': {
    kind: 'ignored',
    why: '°F twin topic of ext_temperature/1: one canonical series per quantity',
  },
  'shelly[3]': {
    kind: 'ignored',
    why: '°F twin topic of ext_temperature/0: one canonical series per quantity',
  },
  'shelly[11]': { kind: 'ignored', why: 'act_reasons is a JSON array of wake-up reasons, not a reading' },
  'shelly[18]': { kind: 'ignored', why: '°F twin topic of temperature: one canonical series per quantity' },
};

/** Fields that deliberately do not appear as readings. Key: `<file>[<index>] <field name>`. */
const FIELD_EXCEPTIONS: Readonly<Record<string, string>> = {
  'shelly[31] temperature:0.tF': '°F twin of tC: one canonical series per quantity',
  'shelly[35] tF': '°F twin of tC: one canonical series per quantity',
  'shelly[38] tF': '°F twin of tC: one canonical series per quantity',
  'shelly[31] devicepower:0.battery.V':
    'external.present=true: 0.43 V means "no battery" (corpus README, no-data values); listed in skipped',
  'shelly[31] devicepower:0.battery.percent':
    'external.present=true: 0 % means "no battery"; listed in skipped',
  'esphome[3] inverter0_power_demand':
    'unit W is only in the node YAML / discovery config; without config the reading has unit "" + unit_unknown',
  'esphome[4] firstfloor_inverter_energy_yesterday':
    'unit kWh is only in the node YAML / discovery config; without config the reading has unit "" + unit_unknown',
};

/** Which decoders each edge case goes through (the file mixes families). */
const EDGE_CASE_FAMILIES: Readonly<Record<number, DecoderFamily[]>> = {
  0: ['tasmota', 'esphome', 'zigbee2mqtt'],
  1: ['tasmota'],
  2: ['tasmota'],
  3: ['number'],
  4: ['number', 'esphome'],
  5: ['zigbee2mqtt'],
  6: ['zigbee2mqtt'],
};

const FILES: readonly [string, DecoderFamily | undefined][] = [
  ['zigbee2mqtt', 'zigbee2mqtt'],
  ['tasmota', 'tasmota'],
  ['shelly', 'shelly'],
  ['esphome', 'esphome'],
  ['senml', 'senml'],
  ['edge_cases', undefined],
];

function load(file: string): Sample[] {
  const path = resolve(FIXTURES, `${file}.json`);
  if (!existsSync(path)) throw new Error(`payload corpus not found at ${path}`);
  return JSON.parse(readFileSync(path, 'utf8')) as Sample[];
}

function bytesOf(s: Sample): Uint8Array {
  const hex = /payload_encoding=hex|payload is hex/i.test(s.notes ?? '');
  return hex ? Uint8Array.from(Buffer.from(s.payload, 'hex')) : new TextEncoder().encode(s.payload);
}

function utcMs(iso: string): number {
  const t = parseTime(iso);
  if (t.kind !== 'utc') throw new Error(`not a UTC time: ${iso}`);
  return t.ms;
}

const isUtcIso = (s: string | null): s is string => s !== null && /^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/.test(s);

/** True when the expected unit says it cannot be known from the payload. */
const unitUnknowable = (unit: string | null) => unit !== null && /unknown|not in payload/i.test(unit);

function findNumeric(readings: Reading[], f: Field, file: string): Reading[] {
  const raw = f.value as number;
  // Units nobody can know from the payload: any unit, as long as the reading is flagged (checked below).
  let want: { value: number; units?: string[] };
  if (unitUnknowable(f.unit)) want = { value: raw };
  else if (f.unit === null) want = { value: raw, units: ['1', ''] };
  else {
    const c = toCanonical(raw, f.unit);
    expect(c.known, `expected unit "${f.unit}" is missing from the unit table`).toBe(true);
    want = { value: c.value, units: [c.unit] };
  }
  return readings.filter(
    (r) =>
      r.value === want.value &&
      (want.units === undefined || want.units.includes(r.unit)) &&
      (f.id === undefined || r.sensor === f.id) &&
      (file !== 'senml' || r.sensor === f.name) &&
      (f.time === undefined || (f.time === null ? r.timeMs === undefined : r.timeMs === utcMs(f.time))),
  );
}

for (const [file, family] of FILES) {
  describe(`payload corpus: ${file}.json`, () => {
    const samples = load(file);
    for (const [index, sample] of samples.entries()) {
      const key = `${file}[${index}]`;
      const families = family === undefined ? (EDGE_CASE_FAMILIES[index] ?? []) : [family];
      for (const fam of families) {
        it(`${key} ${sample.topic} (${fam})`, () => {
          const decode = createDefaultDecoder(fam);
          const outcome = decode({
            topic: sample.topic,
            payload: bytesOf(sample),
            captures: {},
            receivedMs: RECEIVED_MS,
          });
          expect(DecodeOutcomeSchema.safeParse(outcome).success).toBe(true);
          checkSample(key, sample, outcome, file);
        });
      }
    }
  });
}

function checkSample(key: string, sample: Sample, outcome: DecodeOutcome, file: string): void {
  const exception = SAMPLE_EXCEPTIONS[key];
  if (exception !== undefined) {
    expect(outcome.kind, exception.why).toBe(exception.kind);
    return;
  }
  const fields = sample.expected.fields;
  const status = fields.find((f) => f.name === 'availability' || f.name === 'bridge_state');
  if (status !== undefined) {
    expect(outcome).toMatchObject({
      kind: 'status',
      state: String(status.value).toLowerCase().replace('true', 'online'),
    });
    return;
  }
  if (fields.length === 0) {
    expect(['readings', 'rejected']).toContain(outcome.kind);
    return;
  }
  expect(outcome.kind, JSON.stringify(outcome)).toBe('readings');
  if (outcome.kind !== 'readings') return;

  const timestamp = sample.expected.timestamp;
  for (const f of fields) {
    if (FIELD_EXCEPTIONS[`${key} ${f.name}`] !== undefined) continue;
    const label = `${key} field ${f.name}`;
    if (f.value === null) {
      expect(
        outcome.skipped.length,
        `${label}: a no-reading marker must be listed in skipped`,
      ).toBeGreaterThan(0);
      expect(outcome.readings.filter((r) => r.value !== null)).toEqual([]);
      continue;
    }
    const found =
      typeof f.value === 'number'
        ? findNumeric(outcome.readings, f, file)
        : outcome.readings.filter((r) => r.text === String(f.value));
    expect(
      found.length,
      `${label} = ${JSON.stringify(f.value)} ${f.unit}: not among ${JSON.stringify(outcome.readings)}`,
    ).toBeGreaterThan(0);
    if (typeof f.value !== 'number') continue;
    if (unitUnknowable(f.unit)) {
      expect(found.some((r) => r.quality?.some((q) => q === 'unit_unknown' || q === 'unit_assumed'))).toBe(
        true,
      );
    }
    if (f.time !== undefined) continue; // SenML: checked per record above
    if (isUtcIso(timestamp)) {
      expect(
        found.some((r) => r.timeMs === utcMs(timestamp)),
        `${label}: time ${timestamp}`,
      ).toBe(true);
    } else if (timestamp === null) {
      expect(
        found.some((r) => r.timeMs === undefined),
        `${label}: no time in payload`,
      ).toBe(true);
    } else if (/local time/.test(timestamp)) {
      // Time policy (time.ts): a local time without offset is not guessed; receipt time, flagged.
      expect(found.every((r) => r.timeMs === undefined && r.quality?.includes('time_offset_unknown'))).toBe(
        true,
      );
    }
  }
}
