import { describe, expect, it } from 'vitest';
import { DictValues } from './arrow-columns.js';

describe('DictValues', () => {
  it('keeps a copy of each value, not the buffer it was read from', () => {
    // A window build hands over rows where they lie in the socket's chunks (copy-out.ts): a value
    // kept as a view would hold its whole chunk for as long as the window's dictionary lives.
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    chunk.write('st-17', 100, 'latin1');
    const dict = new DictValues(0);
    const code = dict.code(chunk, 100, 5);
    const value = dict.values[code] as Uint8Array;
    expect(Buffer.from(value).toString('latin1')).toBe('st-17');
    expect(value.buffer.byteLength).toBe(5);
    chunk.fill(0);
    expect(Buffer.from(value).toString('latin1')).toBe('st-17');
    expect(dict.code(Buffer.from('st-17'), 0, 5)).toBe(code);
  });
});
