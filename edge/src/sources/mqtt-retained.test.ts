import { describe, expect, it } from 'vitest';
import { RetainedBudget } from './mqtt-retained.js';

describe('RetainedBudget', () => {
  it('keeps topics within the count, lets known topics be replaced and cleared', () => {
    const b = new RetainedBudget(2, 1000);
    expect(b.admit('a', 10)).toBe('retain');
    expect(b.admit('b', 10)).toBe('retain');
    expect(b.admit('c', 10)).toBe('limit');
    expect(b.admit('a', 20)).toBe('retain');
    expect(b.admit('a', 0)).toBe('retain');
    expect(b.topics).toBe(1);
    expect(b.admit('c', 10)).toBe('retain');
  });

  it('keeps the bytes within the budget, counting topic and payload', () => {
    const b = new RetainedBudget(100, 100);
    expect(b.admit('t1', 60)).toBe('retain');
    expect(b.admit('t2', 60)).toBe('limit');
    expect(b.bytes).toBe(62);
    expect(b.admit('t1', 90)).toBe('retain');
    expect(b.admit('t1', 99)).toBe('limit');
    expect(b.bytes).toBe(92);
  });
});
