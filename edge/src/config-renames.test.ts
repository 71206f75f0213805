import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadEdgeConfig, parseEdgeConfig } from './config.js';
import { EDGE_KEY_RENAMES, renameKeys } from './config-renames.js';
import { EdgeConfigError } from './errors.js';

const sensors = (decoders: Record<string, unknown>[]) => ({
  edge: 'gw',
  sensors: decoders.map((decoder, i) => ({ topic: `t${i}/#`, station: `s${i}`, decoder })),
});

const OLD = [
  { type: 'tasmota', timeZone: 'Europe/Berlin', tempUnit: 'F' },
  { type: 'shelly', temperatureUnit: 'F' },
  { type: 'zigbee2mqtt', baseTopic: 'home/zigbee', timeZone: 'UTC' },
  { type: 'json', fields: { t: { variable: 'air_temperature', unit: 'degC' } }, timeZone: 'UTC' },
  { type: 'esphome', learnFromDiscovery: false },
];
const NEW = [
  { type: 'tasmota', time_zone: 'Europe/Berlin', temperature_unit: 'F' },
  { type: 'shelly', temperature_unit: 'F' },
  { type: 'zigbee2mqtt', base_topic: 'home/zigbee', time_zone: 'UTC' },
  { type: 'json', fields: { t: { variable: 'air_temperature', unit: 'degC' } }, time_zone: 'UTC' },
  { type: 'esphome', learn_from_discovery: false },
];

describe('renamed config keys', () => {
  it('old and new spellings give the same frozen config; only the old warn, once per key', () => {
    const oldWarnings: string[] = [];
    const newWarnings: string[] = [];
    const fromOld = parseEdgeConfig(sensors(OLD), {}, { onWarning: (w) => oldWarnings.push(w) });
    const fromNew = parseEdgeConfig(sensors(NEW), {}, { onWarning: (w) => newWarnings.push(w) });
    expect(fromOld).toEqual(fromNew);
    expect(Object.isFrozen(fromOld.sensors[0]?.decoder)).toBe(true);
    expect(newWarnings).toEqual([]);
    expect(oldWarnings.sort()).toEqual(
      [
        'config: sensors[0].decoder.timeZone is deprecated; write time_zone',
        'config: sensors[0].decoder.tempUnit is deprecated; write temperature_unit',
        'config: sensors[1].decoder.temperatureUnit is deprecated; write temperature_unit',
        'config: sensors[2].decoder.baseTopic is deprecated; write base_topic',
        'config: sensors[2].decoder.timeZone is deprecated; write time_zone',
        'config: sensors[3].decoder.timeZone is deprecated; write time_zone',
        'config: sensors[4].decoder.learnFromDiscovery is deprecated; write learn_from_discovery',
      ].sort(),
    );
  });

  it('a file with an old spelling warns once, naming the file, the key and the new spelling', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fb-renames-'));
    const file = join(dir, 'edge.yaml');
    writeFileSync(
      file,
      'edge: gw\nsensors:\n  - topic: tele/+station/SENSOR\n    decoder: { type: tasmota, tempUnit: F }\n',
    );
    const warnings: string[] = [];
    const cfg = loadEdgeConfig(file, {}, { onWarning: (w) => warnings.push(w) });
    expect(cfg.sensors[0]?.decoder).toEqual({ type: 'tasmota', temperature_unit: 'F' });
    expect(warnings).toEqual([`${file}: sensors[0].decoder.tempUnit is deprecated; write temperature_unit`]);
  });

  it('an old and a new spelling of one key together are an error, not a silent pick', () => {
    let err: unknown;
    try {
      parseEdgeConfig(
        sensors([{ type: 'tasmota', tempUnit: 'F', temperature_unit: 'C' }]),
        {},
        {
          onWarning: () => {},
        },
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EdgeConfigError);
    expect((err as EdgeConfigError).problems).toEqual([
      'sensors[0].decoder.tempUnit: give only temperature_unit (the old spelling of the same key is given too)',
    ]);
  });

  it('a refused config does not warn (its errors come first)', () => {
    const warnings: string[] = [];
    expect(() =>
      parseEdgeConfig(
        sensors([{ type: 'tasmota', tempUnit: 'K' }]),
        {},
        { onWarning: (w) => warnings.push(w) },
      ),
    ).toThrow(/sensors\[0\]\.decoder\.temperature_unit/);
    expect(warnings).toEqual([]);
  });

  it('renames only at the listed paths: payload field names that look like old keys stay', () => {
    const doc = sensors([
      { type: 'json', fields: { timeZone: { variable: 'tz', unit: '1' } } },
      { type: 'esphome', sensors: { tempUnit: { unit: 'degC' } } },
    ]);
    const before = structuredClone(doc);
    const out = renameKeys(doc, EDGE_KEY_RENAMES);
    expect(out.renamed).toEqual([]);
    expect(out.doc).toBe(doc);
    expect(doc).toEqual(before);
  });

  it('leaves the input untouched and takes documents of any shape', () => {
    const doc = sensors([{ type: 'shelly', temperatureUnit: 'C' }]);
    const before = structuredClone(doc);
    const out = renameKeys(doc, EDGE_KEY_RENAMES);
    expect(doc).toEqual(before);
    expect(out.renamed).toEqual([
      { path: ['sensors', 0, 'decoder', 'temperatureUnit'], to: 'temperature_unit' },
    ]);
    for (const odd of [null, 7, 'x', [], { sensors: 'x' }, { sensors: [null, 3, { decoder: [] }] }])
      expect(renameKeys(odd, EDGE_KEY_RENAMES).doc).toBe(odd);
  });
});
