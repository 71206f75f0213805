import { describe, expect, it } from 'vitest';
import { FIRMWARE_TOPICS, sensorSetup } from './edge-sensors.js';

describe('sensorSetup (edge add --sensor)', () => {
  it('auto-registers the firmware topics when no sensor is given', () => {
    expect(sensorSetup([])).toEqual({ sensors: [], autoRegisterTopics: [...FIRMWARE_TOPICS] });
  });

  it('reads TOPIC=DECODER as a sensor and a bare TOPIC as an auto-registered filter', () => {
    expect(
      sensorSetup([
        'home/+station/rh=number:relative_humidity:%',
        'meters/+station=json',
        'esp/#',
        'x/+/y=esphome',
      ]),
    ).toEqual({
      sensors: [
        { topic: 'home/+station/rh', decoder: { type: 'number', variable: 'relative_humidity', unit: '%' } },
        { topic: 'meters/+station', decoder: { type: 'json' } },
        { topic: 'x/+/y', decoder: { type: 'esphome' } },
      ],
      autoRegisterTopics: ['esp/#'],
    });
  });

  it('refuses what the agent would refuse, naming the option', () => {
    expect(() => sensorSetup(['a/+station/#x'])).toThrow(/--sensor a\/\+station\/#x: .*without names/);
    expect(() => sensorSetup(['a/b+/c=tasmota'])).toThrow(/mixes a wildcard with text/);
    expect(() => sensorSetup(['a/b=number'])).toThrow(/number:VARIABLE:UNIT/);
    expect(() => sensorSetup(['a/b=tasmota:x'])).toThrow(/unknown decoder "tasmota:x"/);
    expect(() => sensorSetup(['=tasmota'])).toThrow(/give an MQTT topic/);
    expect(() => sensorSetup(['a/+/b=json'])).toThrow(/needs the station in the topic/);
  });
});
