import { describe, expect, it } from 'vitest';
import { fetchSize } from './fetch-size.js';

describe('fetchSize', () => {
  it('asks for what is waiting, up to the round size', () => {
    expect(fetchSize(64, 6)).toBe(6);
    expect(fetchSize(64, 1)).toBe(1);
    expect(fetchSize(64, 1000)).toBe(64);
  });
  it('asks for a full round when nothing is known to wait', () => {
    expect(fetchSize(64, 0)).toBe(64);
    expect(fetchSize(64, undefined)).toBe(64);
  });
});
