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
