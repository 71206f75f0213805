import type { SensorConfig } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { SensorMap } from './sensor-map.js';

const t = (topic: string): SensorConfig => ({
  topic,
  decoder: { type: 'number', variable: 'air_temperature', unit: 'Cel' },
  station: 's1',
});
const bytes = (s: string) => new TextEncoder().encode(s);

describe('SensorMap last reading times', () => {
  it('keeps the receipt time of each sensor’s newest reading, carried over a reload by topic', () => {
    const map = new SensorMap([t('a/t'), t('b/t')]);
    expect(map.states().map((s) => s.lastReadingMs)).toEqual([null, null]);
    map.decode('a/t', bytes('21.5'), 1000);
    map.decode('a/t', bytes('not a number'), 2000);
    expect(map.states().map((s) => s.lastReadingMs)).toEqual([1000, null]);
    const next = new SensorMap([t('c/t'), t('a/t')], undefined, map);
    expect(next.states().map((s) => [s.config.topic, s.lastReadingMs])).toEqual([
      ['c/t', null],
      ['a/t', 1000],
    ]);
  });
});

describe('SensorMap topic matches', () => {
  it('gives each topic its own captures, message after message, past the topics it keeps', () => {
    const map = new SensorMap([
      {
        topic: 'x/+station/+sensor/t',
        decoder: { type: 'number', variable: 'air_temperature', unit: 'Cel' },
      },
    ]);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 1500; i++) {
        const m = map.decode(`x/st${i}/s${i}/t`, bytes('1'), 1000);
        expect(m.matched && m.origin).toEqual({ station: `st${i}`, sensor: `s${i}` });
      }
      expect(map.decode('x/st1/t', bytes('1'), 1000)).toEqual({ matched: false });
      expect(map.decode(`x/${'l'.repeat(300)}/s/t`, bytes('1'), 1000)).toMatchObject({
        matched: true,
        origin: { station: 'l'.repeat(300), sensor: 's' },
      });
    }
    const route = map.route('x/a/b/t');
    expect(Object.isFrozen(route?.captures)).toBe(true);
    expect(map.route('x/a/b/t')?.captures).toEqual({ station: 'a', sensor: 'b' });
  });
});
