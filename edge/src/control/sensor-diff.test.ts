import { describe, expect, it } from 'vitest';
import { diffSensors } from './sensor-diff.js';

const num = (topic: string, variable = 't', station?: string) => ({
  topic,
  decoder: { type: 'number', variable, unit: 'degC' },
  ...(station ? { station } : {}),
});

describe('diffSensors', () => {
  it('names added, removed and changed sensors by topic', () => {
    const before = [num('a/+station'), num('b/+station'), num('c/x', 't', 'st1')];
    const after = [num('a/+station'), num('c/x', 't', 'st2'), num('d/+station')];
    expect(diffSensors(before, after)).toEqual({
      added: ['d/+station'],
      removed: ['b/+station'],
      changed: ['c/x'],
    });
  });

  it('sees no change in key order or in the same list', () => {
    const a = [{ topic: 'x', decoder: { unit: 'degC', variable: 't', type: 'number' } }];
    expect(diffSensors(a, [num('x')])).toEqual({ added: [], removed: [], changed: [] });
  });

  it('compares the first sensor of a topic, the one that routes it', () => {
    expect(diffSensors([num('x', 'a'), num('x', 'b')], [num('x', 'a')]).changed).toEqual([]);
  });
});
