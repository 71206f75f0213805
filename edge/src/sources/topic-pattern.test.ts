import { describe, expect, it } from 'vitest';
import { parseTopicPattern } from './topic-pattern.js';

describe('parseTopicPattern', () => {
  it('captures named single levels', () => {
    const p = parseTopicPattern('sensors/+station/+sensor/temp');
    expect(p.filter).toBe('sensors/+/+/temp');
    expect(p.match('sensors/greenhouse/t1/temp')).toEqual({ station: 'greenhouse', sensor: 't1' });
    expect(p.match('sensors/greenhouse/t1/humidity')).toBeUndefined();
    expect(p.match('sensors/greenhouse/temp')).toBeUndefined();
    expect(p.match('sensors/greenhouse/t1/temp/extra')).toBeUndefined();
  });

  it('captures the rest with #name, including zero levels', () => {
    const p = parseTopicPattern('zigbee2mqtt/#name');
    expect(p.filter).toBe('zigbee2mqtt/#');
    expect(p.match('zigbee2mqtt/living room/sensor')).toEqual({ name: 'living room/sensor' });
    expect(p.match('zigbee2mqtt')).toEqual({ name: '' });
    expect(p.match('other/x')).toBeUndefined();
  });

  it('matches bare wildcards without capturing', () => {
    expect(parseTopicPattern('a/+/c').match('a/b/c')).toEqual({});
    expect(parseTopicPattern('a/#').match('a/b/c')).toEqual({});
  });

  it('rejects # before the last level and mixed levels', () => {
    expect(() => parseTopicPattern('a/#/c')).toThrow(/last level/);
    expect(() => parseTopicPattern('a/b+c')).toThrow(/mixes/);
  });
});
