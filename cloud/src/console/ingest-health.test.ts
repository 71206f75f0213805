import { describe, expect, it } from 'vitest';
import { RateRing } from './ingest-health.js';

describe('RateRing', () => {
  it('takes at most one sample per half interval, so callers polling fast neither change the rate nor grow it', async () => {
    let now = 0;
    let count = 0;
    const ring = new RateRing(
      async () => count,
      5000,
      600_000,
      () => now,
    );
    // A steady 10 per second, sampled by the timer every 5 s...
    const timerOnly = new RateRing(
      async () => count,
      5000,
      600_000,
      () => now,
    );
    for (let s = 0; s <= 120; s++) {
      if (s % 5 === 0) {
        await ring.sample();
        await timerOnly.sample();
      }
      // ...while a client asks ten times a second, each ask a sample call.
      for (let i = 0; i < 10; i++) {
        await ring.sample();
        now += 100;
        count += 1;
      }
    }
    expect(ring.size).toBeLessThanOrEqual(120 / 2.5 + 2);
    expect(ring.perS(60_000)).toBe(timerOnly.perS(60_000));
    expect(ring.perS(60_000)).toBe(10);
  });

  it('keeps only the samples of its longest rate', async () => {
    let now = 0;
    const ring = new RateRing(
      async () => now / 1000,
      1000,
      10_000,
      () => now,
    );
    for (let i = 0; i < 1000; i++) {
      await ring.sample();
      now += 1000;
    }
    expect(ring.size).toBeLessThanOrEqual(12);
  });
});
