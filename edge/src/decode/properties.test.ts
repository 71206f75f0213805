/**
 * Property tests: whatever bytes or JSON arrive on whatever topic, no decoder throws and every
 * outcome has the promised shape (outcome-schema.ts). The decoders are used unguarded here, so a
 * throw is a failure, not a rejection.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { esphomeDecoder } from './esphome.js';
import { jsonFieldsDecoder } from './json-fields.js';
import { numberDecoder } from './number.js';
import { DecodeOutcomeSchema } from './outcome-schema.js';
import { senmlDecoder } from './senml.js';
import { shellyDecoder } from './shelly.js';
import { tasmotaDecoder } from './tasmota.js';
import type { Decoder } from './types.js';
import { zigbee2mqttDecoder } from './zigbee2mqtt.js';

/** Topic levels each family reacts to, mixed with arbitrary text so every branch is reached. */
const LEVELS = [
  'zigbee2mqtt',
  'bridge',
  'state',
  'availability',
  'set',
  'tele',
  'stat',
  'SENSOR',
  'STATE',
  'LWT',
  'STATUS10',
  'shellies',
  'events',
  'rpc',
  'status',
  'online',
  'sensor',
  'temperature',
  'battery',
  'relay',
  'emeter',
  'input_event',
  'light',
  'ext_temperature',
  '0',
  'energy',
  'switch:0',
  'devicepower:0',
  'climate',
  'homeassistant',
  'config',
  'a b',
  '',
];

const topic = fc.oneof(
  fc
    .array(fc.oneof(fc.constantFrom(...LEVELS), fc.string({ maxLength: 8 })), { minLength: 1, maxLength: 6 })
    .map((l) => l.join('/')),
  fc.string({ maxLength: 40 }),
);

/** JSON objects with keys the decoders look for, holding arbitrary JSON, a few levels deep. */
const KEYS = [
  'Time',
  'Epoch',
  'TempUnit',
  'PressureUnit',
  'Temperature',
  'Humidity',
  'Pressure',
  'Id',
  'ENERGY',
  'Total',
  'Power',
  'ZbReceived',
  'StatusSNS',
  'Wifi',
  'RSSI',
  'temperature',
  'voltage',
  'battery',
  'power',
  'last_seen',
  'state',
  'src',
  'method',
  'params',
  'ts',
  'apower',
  'aenergy',
  'by_minute',
  'minute_ts',
  'tC',
  'external',
  'present',
  'e',
  'bn',
  'bt',
  'bu',
  'bv',
  'n',
  'u',
  'v',
  't',
  's',
  'vs',
  'vb',
  'vd',
  'event_cnt',
  'ison',
  'brightness',
  'state_topic',
  'unit_of_measurement',
];
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    'nan',
    'None',
    '',
    '-',
    'F',
    'C',
    'mmHg',
    'NotifyStatus',
    'NotifyFullStatus',
    'online',
    1e308,
    -1,
    2 ** 28,
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small' },
    value,
    fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 6 })), tie('tree'), {
      maxKeys: 6,
    }),
    fc.array(tie('tree'), { maxLength: 4 }),
  ),
}));

const text = (s: string) => new TextEncoder().encode(s);
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.string({ maxLength: 60 }).map(text),
  tree.map((t) => text(JSON.stringify(t) ?? '')),
);

const DECODERS: readonly [string, () => Decoder][] = [
  ['number', () => numberDecoder()],
  ['json (auto)', () => jsonFieldsDecoder()],
  [
    'json (fields)',
    () => jsonFieldsDecoder({ fields: { 'a.b': { variable: 'x', unit: 'degF' } }, time: 'Time' }),
  ],
  ['senml', () => senmlDecoder()],
  ['zigbee2mqtt', () => zigbee2mqttDecoder()],
  ['tasmota', () => tasmotaDecoder()],
  ['tasmota (zoned)', () => tasmotaDecoder({ timeZone: 'Europe/Berlin' })],
  ['shelly', () => shellyDecoder()],
  ['esphome', () => esphomeDecoder()],
];

function expectValid(decoder: Decoder, t: string, p: Uint8Array, receivedMs: number): void {
  const outcome = decoder({ topic: t, payload: p, captures: {}, receivedMs });
  const checked = DecodeOutcomeSchema.safeParse(outcome);
  if (!checked.success) throw new Error(`${JSON.stringify(outcome)}: ${checked.error.message}`);
}

describe.each(DECODERS)('%s decoder on arbitrary input', (_name, make) => {
  it('never throws and always returns a valid outcome', () => {
    const decoder = make();
    fc.assert(
      fc.property(topic, payload, fc.integer({ min: 0, max: 4_102_444_800_000 }), (t, p, r) =>
        expectValid(decoder, t, p, r),
      ),
      { numRuns: 400 },
    );
  });
});

/** Real payloads, cut short or with a byte changed: the damage MQTT brokers and firmware really do. */
describe('corpus payloads, damaged', () => {
  const dir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/payloads');
  const samples = ['zigbee2mqtt', 'tasmota', 'shelly', 'esphome', 'senml', 'edge_cases'].flatMap(
    (f) =>
      JSON.parse(readFileSync(resolve(dir, `${f}.json`), 'utf8')) as {
        topic: string;
        payload: string;
        notes?: string;
      }[],
  );
  const bytes = samples.map((s) => ({
    topic: s.topic,
    payload: /payload_encoding=hex|payload is hex/i.test(s.notes ?? '')
      ? Uint8Array.from(Buffer.from(s.payload, 'hex'))
      : text(s.payload),
  }));
  const damaged = fc
    .tuple(fc.constantFrom(...bytes), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean())
    .map(([s, cut, at, byte, flip]) => {
      const p = s.payload.slice(0, s.payload.length === 0 ? 0 : cut % (s.payload.length + 1));
      if (flip && p.length > 0) p[at % p.length] = byte;
      return { topic: s.topic, payload: p };
    });

  it.each(DECODERS)('%s never throws', (_name, make) => {
    const decoder = make();
    fc.assert(
      fc.property(damaged, ({ topic: t, payload: p }) => expectValid(decoder, t, p, 0)),
      { numRuns: 300 },
    );
  });
});
