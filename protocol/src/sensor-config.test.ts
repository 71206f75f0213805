import { describe, expect, it } from 'vitest';
import { CentralSensorConfig, centralSensors, SensorConfig } from './sensor-config.js';

describe('CentralSensorConfig', () => {
  it('takes sensors as the edge YAML writes them, and auto_register settings', () => {
    const v = CentralSensorConfig.parse({
      sensors: [{ topic: 'zigbee2mqtt/+station', decoder: { type: 'zigbee2mqtt' } }],
      auto_register: true,
    });
    expect(v.sensors[0]?.decoder.type).toBe('zigbee2mqtt');
    expect(v.auto_register?.enabled).toBe(true);
    expect(CentralSensorConfig.parse({}).sensors).toEqual([]);
  });

  it('refuses what the edge refuses, naming the path', () => {
    const bad = CentralSensorConfig.safeParse({
      sensors: [
        { topic: 'a/b', decoder: { type: 'number', variable: 'air_temperature', unit: 'K', scale: 2 } },
      ],
    });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain('scale');
    expect(
      SensorConfig.safeParse({ topic: 'a/b', decoder: { type: 'number', variable: 'v', unit: 'K' } }).success,
    ).toBe(false);
    expect(CentralSensorConfig.safeParse({ sensors: [], extra: 1 }).success).toBe(false);
  });

  it('keys: one per edge, one for every edge', () => {
    expect(centralSensors.edgeKey('gw-1')).toBe('edge.gw-1');
    expect(centralSensors.subject(centralSensors.edgeKey('gw-1'))).toBe('$KV.fb_sensors.edge.gw-1');
    expect(() => centralSensors.edgeKey('a.b')).toThrow(/subject token/);
  });
});
