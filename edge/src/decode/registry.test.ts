import { describe, expect, it } from 'vitest';
import { parseTopicPattern } from '../sources/topic-pattern.js';
import {
  createDecoder,
  createDefaultDecoder,
  DECODER_FAMILIES,
  DecoderSpec,
  defaultTopicPattern,
} from './registry.js';
import { cfNameFor, variableFor } from './variables.js';

const input = (topic: string, payload: string) => ({
  topic,
  payload: new TextEncoder().encode(payload),
  captures: {},
  receivedMs: 0,
});

describe('DecoderSpec', () => {
  it('accepts every family, with and without options', () => {
    const specs = [
      { type: 'number', variable: 'air_temperature', unit: 'degC' },
      {
        type: 'json',
        fields: { 'SDS0X1.PM2.5': { variable: 'pm', unit: 'ug/m3' } },
        time: 'Time',
        time_zone: 'Europe/Berlin',
      },
      { type: 'json' },
      { type: 'senml' },
      { type: 'zigbee2mqtt' },
      { type: 'zigbee2mqtt', base_topic: 'zigbee', units: { voc: 'ug/m3' } },
      { type: 'tasmota', time_zone: 'Europe/Berlin', temperature_unit: 'F' },
      { type: 'shelly', temperature_unit: 'C' },
      { type: 'esphome', sensors: { power: { unit: 'W' } }, learn_from_discovery: false },
    ];
    for (const spec of specs) expect(DecoderSpec.safeParse(spec).success, JSON.stringify(spec)).toBe(true);
  });

  it('rejects typos and unknown zones with a message that says what to fix', () => {
    expect(DecoderSpec.safeParse({ type: 'tasmota', timezone: 'UTC' }).success).toBe(false);
    const bad = DecoderSpec.safeParse({ type: 'tasmota', time_zone: 'Mars/Olympus' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.message).toContain('IANA time zone');
    expect(DecoderSpec.safeParse({ type: 'shelly', temperature_unit: 'K' }).success).toBe(false);
    expect(DecoderSpec.safeParse({ type: 'lorawan' }).success).toBe(false);
  });

  it('builds a decoder for every family', () => {
    for (const family of DECODER_FAMILIES) {
      expect(typeof createDefaultDecoder(family)).toBe('function');
    }
    expect(
      createDecoder({ type: 'number', variable: 'air_temperature', unit: 'degC' })(input('a/b', '21.5')),
    ).toEqual({
      kind: 'readings',
      readings: [{ variable: 'air_temperature', value: 21.5, unit: 'degC' }],
      skipped: [],
    });
  });

  it('passes the time zone to the families that read device-local times', () => {
    const out = createDefaultDecoder('tasmota', { timeZone: 'UTC' })(
      input('tele/t/SENSOR', '{"Time":"2019-11-03T19:34:28","DS18B20":{"Temperature":20.6},"TempUnit":"C"}'),
    );
    expect(out).toMatchObject({ readings: [{ timeMs: Date.parse('2019-11-03T19:34:28Z') }] });
  });
});

describe('defaultTopicPattern', () => {
  it('gives patterns the config accepts, for every family', () => {
    for (const family of DECODER_FAMILIES) {
      const c = defaultTopicPattern(family);
      for (const p of c.patterns) expect(() => parseTopicPattern(p)).not.toThrow();
      expect(c.station.length).toBeGreaterThan(0);
    }
  });

  it('captures the station the family convention names', () => {
    expect(
      parseTopicPattern(defaultTopicPattern('tasmota').patterns[0] ?? '').match('tele/kitchen/SENSOR'),
    ).toEqual({ station: 'kitchen' });
    expect(defaultTopicPattern('number').stationOf('greenhouse/north/temperature')).toBe('greenhouse/north');
    expect(defaultTopicPattern('zigbee2mqtt').stationOf('zigbee2mqtt/Air Quality Sensor')).toBe(
      'Air Quality Sensor',
    );
  });
});

describe('variables', () => {
  it('maps field names to CF standard names across spellings', () => {
    expect(cfNameFor('Temperature')).toBe('air_temperature');
    expect(cfNameFor('DewPoint')).toBe('dew_point_temperature');
    expect(cfNameFor('dew_point')).toBe('dew_point_temperature');
    expect(cfNameFor('PM2.5')).toBe('mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air');
    expect(cfNameFor('pm25')).toBe('mass_concentration_of_pm2p5_ambient_aerosol_particles_in_air');
    expect(cfNameFor('PM10')).toBe('mass_concentration_of_pm10_ambient_aerosol_particles_in_air');
    expect(cfNameFor('PM1.0')).toBe('mass_concentration_of_pm1_ambient_aerosol_particles_in_air');
    expect(cfNameFor('CarbonDioxide')).toBe('mole_fraction_of_carbon_dioxide_in_air');
    expect(cfNameFor('constructor')).toBeUndefined();
  });

  it('namespaces fields without a CF name by family', () => {
    expect(variableFor('zigbee2mqtt', 'linkquality')).toBe('zigbee2mqtt:linkquality');
    expect(variableFor('tasmota', 'Humidity')).toBe('relative_humidity');
  });
});
