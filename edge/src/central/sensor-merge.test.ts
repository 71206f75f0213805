import { AutoRegisterConfig, type SensorConfig } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { mergeSensors } from './sensor-merge.js';

const sensor = (topic: string, station: string): SensorConfig => ({
  topic,
  decoder: { type: 'number', variable: 'air_temperature', unit: 'Cel' },
  station,
});
const off = AutoRegisterConfig.parse(false);
const on = AutoRegisterConfig.parse(true);

describe('mergeSensors', () => {
  it('runs the YAML alone when there is no central config', () => {
    const local = [sensor('a/t', 'yaml')];
    const m = mergeSensors({ sensors: local, autoRegister: off }, {});
    expect(m.sensors).toEqual(local);
    expect(m.central.size).toBe(0);
    expect(m.autoRegister).toBe(off);
  });

  it('puts the YAML first, then the edge key, then all; the same topic is taken from the highest', () => {
    const m = mergeSensors(
      { sensors: [sensor('a/t', 'yaml')], autoRegister: off },
      {
        own: { sensors: [sensor('a/t', 'own'), sensor('b/t', 'own'), sensor('own/+station', 'x')] },
        all: { sensors: [sensor('a/t', 'all'), sensor('b/t', 'all'), sensor('c/t', 'all')] },
      },
    );
    expect(m.sensors.map((s) => `${s.topic}=${s.station}`)).toEqual([
      'a/t=yaml',
      'b/t=own',
      'own/+station=x',
      'c/t=all',
    ]);
    expect([...m.central].map((s) => s.topic)).toEqual(['b/t', 'own/+station', 'c/t']);
    expect(m.shadowed).toEqual([
      { topic: 'a/t', key: 'own' },
      { topic: 'a/t', key: 'all' },
      { topic: 'b/t', key: 'all' },
    ]);
  });

  it('takes auto_register from the edge key, else all, else the YAML', () => {
    const local = { sensors: [], autoRegister: off };
    expect(mergeSensors(local, { all: { sensors: [], auto_register: on } }).autoRegister).toBe(on);
    expect(
      mergeSensors(local, {
        all: { sensors: [], auto_register: on },
        own: { sensors: [], auto_register: off },
      }).autoRegister,
    ).toBe(off);
    expect(mergeSensors(local, { own: { sensors: [] } }).autoRegister).toBe(off);
  });
});
