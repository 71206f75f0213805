import { describe, expect, it, vi } from 'vitest';
import { parseIssTimestamp } from '../iss/iss-timestamp.js';
import { loadIssRanges } from '../iss/isslive-catalogue.js';
import { startGenerator } from './iss-value-generator.js';
import { createItemFeed } from './item-feed.js';

describe('ISSLIVE value generator', () => {
  it('starts with a value for every item and keeps them plausible and live', () => {
    vi.useFakeTimers({ now: Date.parse('2026-05-01T12:00:00.000Z') });
    try {
      const feed = createItemFeed();
      let seed = 1;
      const random = () => {
        seed = (seed * 16807) % 2147483647;
        return seed / 2147483647;
      };
      const gen = startGenerator(feed, {
        items: ['USLAB000058', 'USLAB000081', 'S0000003'],
        rate: 10,
        random,
      });
      for (const item of ['TIME_000001', 'USLAB000058', 'USLAB000081', 'S0000003']) {
        expect(feed.state(item), item).toBeDefined();
      }
      const [min, max] = loadIssRanges().get('USLAB000058') ?? [0, 0];
      for (let i = 0; i < 50; i++) {
        vi.advanceTimersByTime(100);
        const cabin = Number(feed.state('USLAB000058')?.[1]);
        expect(cabin).toBeGreaterThanOrEqual(min);
        expect(cabin).toBeLessThanOrEqual(max);
        expect(['0', '1']).toContain(feed.state('USLAB000081')?.[1]);
      }
      const clock = feed.state('TIME_000001');
      expect(parseIssTimestamp(clock?.[0], Date.now())).toBe(Date.now());
      expect(clock?.[2]).toBe('24');

      gen.setSignal(false);
      const before = feed.state('USLAB000058');
      vi.advanceTimersByTime(500);
      expect(feed.state('TIME_000001')?.[2]).toBe('9');
      expect(feed.state('USLAB000058')).toBe(before);
      gen.stop();
    } finally {
      vi.useRealTimers();
    }
  });
});
