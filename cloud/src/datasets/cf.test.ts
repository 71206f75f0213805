import { describe, expect, it } from 'vitest';
import { cfStandardName, cfValueMetadata } from './cf.js';

describe('CF metadata', () => {
  it('names the variables the decoders produce and the ISS cabin items', () => {
    expect(cfStandardName('air_temperature')).toBe('air_temperature');
    expect(cfStandardName('relative_humidity')).toBe('relative_humidity');
    expect(cfStandardName('iss:USLAB000058')).toBe('air_pressure');
    expect(cfStandardName('zigbee2mqtt:linkquality')).toBeUndefined();
    expect(cfStandardName('toString')).toBeUndefined();
  });
  it('keys standard names and units by variable, leaving out a unit that is not one', () => {
    const m = cfValueMetadata(
      [
        ['relative_humidity', '%'],
        ['air_temperature', 'degC'],
        ['zigbee2mqtt:linkquality', '1'],
        ['iss:USLAB000058', 'mmHg'],
        ['iss:X', 'V'],
        ['iss:X', 'A'],
      ],
      'time: mean (interval: 600 s)',
    );
    expect(JSON.parse(m.get('standard_name_by_variable') ?? '')).toEqual({
      air_temperature: 'air_temperature',
      'iss:USLAB000058': 'air_pressure',
      relative_humidity: 'relative_humidity',
    });
    expect(JSON.parse(m.get('units_by_variable') ?? '')).toEqual({
      air_temperature: 'degC',
      'iss:USLAB000058': 'mmHg',
      relative_humidity: '%',
      'zigbee2mqtt:linkquality': '1',
    });
    expect(m.get('cell_methods')).toBe('time: mean (interval: 600 s)');
  });
});
