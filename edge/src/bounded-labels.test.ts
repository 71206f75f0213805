import { describe, expect, it } from 'vitest';
import { BoundedLabels } from './bounded-labels.js';

describe('BoundedLabels', () => {
  it('gives the first values their own label and the rest `other`, each cut to length', () => {
    const labels = new BoundedLabels(2, 4);
    expect(labels.of('a')).toBe('a');
    expect(labels.of('bcdefg')).toBe('bcde');
    expect(labels.of('c')).toBe('other');
    expect(labels.of('a')).toBe('a');
    expect(labels.of('bcdexyz')).toBe('bcde');
    const set = new Set(Array.from({ length: 3000 }, (_, i) => labels.of(`t${i}`)));
    expect([...set]).toEqual(['other']);
  });
});
