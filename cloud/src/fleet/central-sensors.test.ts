import type { EdgeStatus } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { CloudErrorCode } from '../errors.js';
import { checkSensor, promotedSensors, targetKey } from './central-sensors.js';

const heartbeat = (sensors: NonNullable<EdgeStatus['sensors']>) => ({ sensors }) as EdgeStatus;

describe('central sensors (collector side)', () => {
  it('names the key of an edge or of every edge', () => {
    expect(targetKey({ edge: 'gw-1' })).toBe('edge.gw-1');
    expect(targetKey({ all: true })).toBe('all');
  });

  it('refuses a sensor the edges would refuse, with the path and the reason', () => {
    expect(() => checkSensor({ topic: 'a/+station', decoder: { type: 'number', variable: 'co2' } })).toThrow(
      /sensor refused.*decoder\.unit/,
    );
    expect(() => checkSensor({ topic: 'a/b+/c', decoder: { type: 'zigbee2mqtt' } })).toThrow(
      /mixes a wildcard/,
    );
    try {
      checkSensor({ topic: 'x', decoder: { type: 'lorawan' } });
      expect.fail('accepted');
    } catch (err) {
      expect((err as { code: string }).code).toBe(CloudErrorCode.SENSOR_CONFIG_INVALID);
    }
  });

  it('promotes auto-registered sensors with their decoder and station; a plain number keeps its variable', () => {
    const status = heartbeat([
      { topic: 's/+station/t', decoder: 'number', origin: 'local', lastReadingTime: null },
      {
        topic: 'zigbee2mqtt/attic',
        decoder: 'zigbee2mqtt',
        station: 'attic',
        origin: 'auto',
        lastReadingTime: null,
      },
      {
        topic: 'kitchen/temperature',
        decoder: 'number',
        station: 'kitchen',
        origin: 'auto',
        lastReadingTime: null,
      },
    ]);
    expect(promotedSensors(status, 'gw-1', ['zigbee2mqtt/attic', 'kitchen/temperature'])).toEqual([
      { topic: 'zigbee2mqtt/attic', decoder: { type: 'zigbee2mqtt' }, station: 'attic' },
      {
        topic: 'kitchen/temperature',
        decoder: { type: 'number', variable: 'mqtt:temperature', unit: '' },
        station: 'kitchen',
      },
    ]);
    // Only auto-registered ones, and an unknown topic names those there are.
    expect(() => promotedSensors(status, 'gw-1', ['s/+station/t'])).toThrow(
      /no auto-registered sensor on s\/\+station\/t .*zigbee2mqtt\/attic, kitchen\/temperature/,
    );
    expect(() => promotedSensors(undefined, 'gw-1', ['a'])).toThrow(/no heartbeat from it yet/);
  });
});
