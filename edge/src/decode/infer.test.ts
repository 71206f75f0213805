import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { candidateFamilies, createFamilyDecoders, inferReadings } from './infer.js';
import { createDefaultDecoder, type DecoderFamily } from './registry.js';

const input = (topic: string, payload: string | Uint8Array) => ({
  topic,
  payload: typeof payload === 'string' ? new TextEncoder().encode(payload) : payload,
  captures: {},
  receivedMs: Date.UTC(2026, 0, 1),
});

const infer = (topic: string, payload: string | Uint8Array, family?: DecoderFamily) =>
  inferReadings(input(topic, payload), createFamilyDecoders(), family);

describe('inferReadings: firmware conventions by topic', () => {
  it('Tasmota tele/<topic>/SENSOR, in either FullTopic order, station = the Tasmota topic', () => {
    const payload = JSON.stringify({
      Time: '2026-01-01T10:00:00',
      BME280: { Temperature: 21.5, Humidity: 40.1, Pressure: 1013.2 },
      TempUnit: 'C',
      PressureUnit: 'hPa',
    });
    for (const topic of ['tele/kitchen/SENSOR', 'home/floor1/kitchen/tele/SENSOR']) {
      const r = infer(topic, payload);
      expect(r.ok && r.family, topic).toBe('tasmota');
      if (!r.ok) continue;
      expect(r.station).toBe('kitchen');
      expect(r.outcome.readings.map((x) => [x.variable, x.value, x.sensor])).toEqual([
        ['air_temperature', 21.5, 'BME280'],
        ['relative_humidity', 40.1, 'BME280'],
        ['air_pressure', 1013.2, 'BME280'],
      ]);
    }
  });

  it('zigbee2mqtt state and attribute topics, station = the friendly name (spaces and / allowed)', () => {
    const state = infer('zigbee2mqtt/living room/sensor', '{"temperature":19.5,"humidity":55,"battery":97}');
    expect(state.ok && [state.family, state.station]).toEqual(['zigbee2mqtt', 'living room/sensor']);
    expect(state.ok && state.outcome.readings.map((r) => r.variable)).toEqual([
      'air_temperature',
      'relative_humidity',
      'zigbee2mqtt:battery',
    ]);
    const attribute = infer('zigbee2mqtt/z1/power', '12.5');
    expect(attribute.ok && [attribute.family, attribute.station]).toEqual(['zigbee2mqtt', 'z1']);
  });

  it('Shelly Gen1 plain topics and Gen2 status topics', () => {
    const gen1 = infer('shellies/shellyht-1/sensor/temperature', '21.25');
    expect(gen1.ok && [gen1.family, gen1.station, gen1.outcome.readings[0]?.value]).toEqual([
      'shelly',
      'shellyht-1',
      21.25,
    ]);
    const gen2 = infer('pm-1/status/switch:0', '{"id":0,"apower":8.9,"voltage":229.1,"output":true}');
    expect(gen2.ok && [gen2.family, gen2.station]).toEqual(['shelly', 'pm-1']);
  });

  it('ESPHome <node>/sensor/<id>/state: station = the node', () => {
    const r = infer('weather/sensor/outdoor_temperature/state', '12.3');
    expect(r.ok && [r.family, r.station, r.outcome.readings[0]?.variable]).toEqual([
      'esphome',
      'weather',
      'esphome:outdoor_temperature',
    ]);
  });

  it('a firmware topic whose decoder rejects the payload falls back to the payload’s own form', () => {
    // The Tasmota decoder wants a JSON object on SENSOR topics; a plain number is read as one.
    const r = infer('tele/x/SENSOR', '21.5');
    expect(r.ok && [r.family, r.station]).toEqual(['number', 'tele/x']);
  });
});

describe('inferReadings: generic payloads', () => {
  it('flat and nested JSON: every numeric leaf, station = the topic', () => {
    const flat = infer('garden/shed', '{"temp": 14.5, "hum": 71, "name": "shed"}');
    expect(flat.ok && [flat.family, flat.station]).toEqual(['json', 'garden/shed']);
    expect(flat.ok && flat.outcome.readings.map((r) => [r.variable, r.value])).toEqual([
      ['json:temp', 14.5],
      ['json:hum', 71],
    ]);
    const nested = infer('lab/bench', '{"env": {"t": 20.5, "p": {"hPa": 1001}}}');
    expect(nested.ok && nested.outcome.readings.map((r) => r.variable)).toEqual([
      'json:env.t',
      'json:env.p.hPa',
    ]);
  });

  it('a plain number: variable mqtt:<last level>, station = the levels before it', () => {
    const r = infer('garage/door/temperature', ' 7.25 ');
    expect(
      r.ok && [r.family, r.station, r.outcome.readings[0]?.variable, r.outcome.readings[0]?.value],
    ).toEqual(['number', 'garage/door', 'mqtt:temperature', 7.25]);
  });

  it('SenML JSON packs and the pre-RFC draft', () => {
    const pack = infer('senml/dev1', '[{"bn":"urn:dev:ow:10e2073a01080063","n":"temp","u":"Cel","v":23.1}]');
    expect(pack.ok && [pack.family, pack.station]).toEqual(['senml', 'senml/dev1']);
    const draft = infer('senml/dev2', '{"e":[{"n":"voltage","u":"V","v":120.1}],"bn":"dev2/"}');
    expect(draft.ok && draft.family).toBe('senml');
  });

  it('a fixed family skips the inference', () => {
    const r = infer('tele/kitchen/SENSOR', '{"BME280":{"Temperature":21.5}}', 'json');
    expect(r.ok && [r.family, r.outcome.readings[0]?.variable]).toEqual(['json', 'json:BME280.Temperature']);
  });
});

describe('inferReadings: nothing numeric, nothing registered', () => {
  it.each([
    ['text', 'hall/light', 'ON'],
    ['JSON without numbers', 'hall/light', '{"state":"ON","mode":"auto"}'],
    ['a "no reading" marker', 'hall/temperature', 'nan'],
    ['an empty payload', 'hall/temperature', ''],
    ['Tasmota LWT', 'tele/kitchen/LWT', 'Online'],
    ['zigbee2mqtt availability', 'zigbee2mqtt/z1/availability', '{"state":"online"}'],
    [
      'zigbee2mqtt bridge messages',
      'zigbee2mqtt/bridge/info',
      '{"version":"1.35.0","coordinator":{"type":3}}',
    ],
    ['a discovery config', 'homeassistant/sensor/x/temperature/config', '{"state_topic":"x/state"}'],
    ['a number with no level left for a station', 'temperature', '21.5'],
    ['invalid UTF-8', 'a/b', Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d])],
  ])('%s', (_, topic, payload) => {
    const r = infer(topic, payload);
    expect(r.ok, JSON.stringify(r)).toBe(false);
    if (!r.ok) expect(r.reason.length).toBeGreaterThan(0);
  });

  it('never throws, whatever the topic and bytes', () => {
    const decoders = createFamilyDecoders();
    const levels = fc.constantFrom(
      'zigbee2mqtt',
      'tele',
      'stat',
      'SENSOR',
      'shellies',
      'events',
      'rpc',
      'status',
    );
    const topic = fc
      .array(fc.oneof(levels, fc.string({ maxLength: 8 })), { minLength: 1, maxLength: 6 })
      .map((l) => l.join('/'));
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v))),
    );
    fc.assert(
      fc.property(topic, payload, (t, p) => {
        const r = inferReadings(input(t, p), decoders);
        if (r.ok) {
          expect(r.station.length).toBeGreaterThan(0);
          expect(r.outcome.readings.some((x) => x.value !== null)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});

/**
 * The payload corpus (test/fixtures/payloads): every sample that
 * its own family's decoder turns into numeric readings is inferred as that family, with the same
 * outcome, when it is on the family's default topics.
 */
describe('inferReadings on the payload corpus', () => {
  const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/payloads');
  const FAMILIES: DecoderFamily[] = ['zigbee2mqtt', 'tasmota', 'shelly', 'esphome', 'senml'];
  /** Samples off their family's default topics. */
  const OFF_CONVENTION: Readonly<Record<string, string>> = {
    'zigbee2mqtt[29]': 'custom base topic "zigbee/": read as generic JSON',
  };

  it.each(FAMILIES)('%s', (family) => {
    const path = resolve(FIXTURES, `${family}.json`);
    if (!existsSync(path)) throw new Error(`payload corpus not found at ${path}`);
    const samples = JSON.parse(readFileSync(path, 'utf8')) as {
      topic: string;
      payload: string;
      notes?: string;
    }[];
    let checked = 0;
    samples.forEach((s, i) => {
      const hex = /payload_encoding=hex|payload is hex/i.test(s.notes ?? '');
      const bytes = hex
        ? Uint8Array.from(Buffer.from(s.payload, 'hex'))
        : new TextEncoder().encode(s.payload);
      const direct = createDefaultDecoder(family)(input(s.topic, bytes));
      if (direct.kind !== 'readings' || !direct.readings.some((r) => r.value !== null)) return;
      const key = `${family}[${i}]`;
      const inferred = infer(s.topic, bytes);
      if (OFF_CONVENTION[key]) {
        expect(inferred.ok && inferred.family, key).not.toBe(family);
        return;
      }
      expect(inferred.ok && inferred.family, key).toBe(family);
      if (inferred.ok) expect(inferred.outcome, key).toEqual(direct);
      checked++;
    });
    expect(checked).toBeGreaterThanOrEqual(3);
  });
});

describe('candidateFamilies', () => {
  it('puts the firmware family first and the payload forms after it', () => {
    const bytes = (s: string) => new TextEncoder().encode(s);
    expect(candidateFamilies('tele/x/SENSOR', bytes('{}'))).toEqual(['tasmota', 'senml', 'json']);
    expect(candidateFamilies('a/b', bytes('[1]'))).toEqual(['senml']);
    expect(candidateFamilies('a/b', Uint8Array.from([0x81, 0xa1]))).toEqual(['senml']);
    expect(candidateFamilies('a/b', bytes('21'))).toEqual(['number']);
    expect(candidateFamilies('node/binary_sensor/door/state', bytes('ON'))).toEqual(['number']);
  });
});
