import type { SensorConfig } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { sensorStates } from './sensor-states.js';

const sensor = (topic: string, station?: string): SensorConfig =>
  ({
    topic,
    decoder: { type: 'number', variable: 't', unit: 'degC' },
    ...(station ? { station } : {}),
  }) as SensorConfig;

describe('sensorStates', () => {
  it('lists configured sensors by origin, then auto-registered ones, with the last reading times known', () => {
    const states = sensorStates(
      [
        { sensor: sensor('a/+station'), origin: 'local' },
        { sensor: sensor('b/x', 'barn'), origin: 'central' },
      ],
      {
        enabled: true,
        maxSensors: 10,
        count: 1,
        sensors: [
          {
            topic: 'tele/plug/SENSOR',
            family: 'tasmota',
            station: 'plug',
            since: '2026-12-05T10:00:00.000Z',
            variables: ['power'],
            messages: 3,
            lastReadingMs: null,
          },
        ],
      },
      (topic) => (topic === 'b/x' ? '2026-12-05T11:00:00.000Z' : null),
    );
    expect(states).toEqual([
      { topic: 'a/+station', decoder: 'number', origin: 'local', lastReadingTime: null },
      {
        topic: 'b/x',
        decoder: 'number',
        station: 'barn',
        origin: 'central',
        lastReadingTime: '2026-12-05T11:00:00.000Z',
      },
      {
        topic: 'tele/plug/SENSOR',
        decoder: 'tasmota',
        station: 'plug',
        origin: 'auto',
        lastReadingTime: null,
      },
    ]);
  });

  it('cuts texts to what the heartbeat allows', () => {
    const [s] = sensorStates([{ sensor: sensor(`t/${'x'.repeat(300)}`, 's'.repeat(200)), origin: 'local' }], {
      enabled: false,
      maxSensors: 0,
      count: 0,
      sensors: [],
    });
    expect(s?.topic.length).toBe(256);
    expect(s?.station?.length).toBe(128);
  });
});
