import { describe, expect, it } from 'vitest';
import { sensorFromForm } from './SensorForm.tsx';

const form = {
  topic: ' greenhouse/+station/co2 ',
  decoder: 'number',
  options: '',
  station: '',
  lat: '',
  lon: '',
};

describe('the sensor form', () => {
  it('builds the sensor as the YAML holds it: decoder options under decoder, with its type', () => {
    expect(
      sensorFromForm({
        ...form,
        options: '{"variable":"co2","unit":"ppm","type":"json"}',
        lat: '52.52',
        lon: '13.4',
      }),
    ).toEqual({
      sensor: {
        topic: 'greenhouse/+station/co2',
        decoder: { variable: 'co2', unit: 'ppm', type: 'number' },
        lat: 52.52,
        lon: 13.4,
      },
    });
    expect(sensorFromForm({ ...form, station: 'gh1' })).toEqual({
      sensor: { topic: 'greenhouse/+station/co2', decoder: { type: 'number' }, station: 'gh1' },
    });
  });
  it('names every problem the browser can see, and leaves the rest to the collector', () => {
    const r = sensorFromForm({ ...form, options: '{"variable":', lat: 'north', lon: '1' });
    expect('problems' in r && r.problems.map((p) => p.split(':')[0])).toEqual(['decoder options', 'lat']);
    expect(sensorFromForm({ ...form, options: '[1,2]' })).toEqual({
      problems: ['decoder options: a JSON object is expected, e.g. {"variable":"co2","unit":"ppm"}'],
    });
  });
});
