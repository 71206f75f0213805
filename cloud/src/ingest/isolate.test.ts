import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isolateFailures } from './isolate.js';

class DataError extends Error {}

/** An attempt that fails when its part holds a bad item, and records what it stored. */
function store(bad: ReadonlySet<number>) {
  const stored: number[] = [];
  let attempts = 0;
  const attempt = async (part: readonly number[]) => {
    attempts++;
    const culprit = part.find((i) => bad.has(i));
    if (culprit !== undefined) throw new DataError(`item ${culprit} refused`);
    stored.push(...part);
  };
  return { stored, attempt, attempts: () => attempts };
}
const isData = (e: unknown) => e instanceof DataError;

describe('isolateFailures', () => {
  it('keeps every good item and names every bad one, for any placement', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 0, max: 200 })
          .chain((n) =>
            fc.tuple(
              fc.constant(n),
              fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, n - 1) }), { maxLength: 6 }),
            ),
          ),
        async ([n, badList]) => {
          const items = Array.from({ length: n }, (_, i) => i);
          const bad = new Set(badList.filter((b) => b < n));
          const s = store(bad);
          const culprits = await isolateFailures(items, s.attempt, isData);
          expect(culprits.map((c) => c.item).sort((a, b) => a - b)).toEqual([...bad].sort((a, b) => a - b));
          expect(s.stored.sort((a, b) => a - b)).toEqual(items.filter((i) => !bad.has(i)));
          for (const c of culprits) expect((c.error as Error).message).toBe(`item ${c.item} refused`);
        },
      ),
    );
  });

  it('needs few attempts for one bad item among many', async () => {
    const items = Array.from({ length: 500 }, (_, i) => i);
    const s = store(new Set([321]));
    await isolateFailures(items, s.attempt, isData);
    expect(s.attempts()).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(500)) + 1);
  });

  it('skips the first attempt when the whole set is known to fail', async () => {
    const s = store(new Set([0]));
    const culprits = await isolateFailures([0], s.attempt, isData, new DataError('known'));
    expect(s.attempts()).toBe(0);
    expect(culprits).toEqual([{ item: 0, error: new DataError('known') }]);
  });

  it('throws an error it cannot isolate at once', async () => {
    const attempt = async () => {
      throw new Error('connection lost');
    };
    await expect(isolateFailures([1, 2, 3], attempt, isData)).rejects.toThrow('connection lost');
  });
});
