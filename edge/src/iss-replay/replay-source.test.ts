import { describe, expect, it, vi } from 'vitest';
import { parseIssTimestamp } from '../iss/iss-timestamp.js';
import { createItemFeed, type ItemUpdate } from './item-feed.js';
import { parseReplayJsonl, replayOffsets, startReplay, toItemUpdate } from './replay-source.js';

const u = (item: string, ts: string | undefined, value = '1'): ItemUpdate => ({
  item,
  fields: ts === undefined ? { Value: value } : { TimeStamp: ts, Value: value },
});

describe('replay files', () => {
  it('reads JSON Lines, skipping blanks and comments, keeping spellings and nulls', () => {
    const text = [
      '# recorded 2018-10-12',
      '{"item":"USLAB000058","TimeStamp":"6844.9875","Value":"742.990","Status.Class":"24"}',
      '',
      '{"item":"USLAB000059","TimeStamp":6844.99,"Value":null}',
    ].join('\n');
    expect(parseReplayJsonl(text)).toEqual([
      { item: 'USLAB000058', fields: { TimeStamp: '6844.9875', Value: '742.990', 'Status.Class': '24' } },
      { item: 'USLAB000059', fields: { TimeStamp: '6844.99', Value: null } },
    ]);
  });

  it('reports every bad line with its number', () => {
    const text = '{"item":"A1","Value":"1"}\nnot json\n{"item":"bad item"}\n{"item":"B","Valu":"x"}';
    expect(() => parseReplayJsonl(text, 'r.jsonl')).toThrow(
      /3 unusable replay line\(s\):\n {2}r\.jsonl:2: .*\n {2}r\.jsonl:3: .*\n {2}r\.jsonl:4: /,
    );
  });

  it('normalises the flat line form', () => {
    expect(toItemUpdate({ item: 'X1', Value: 3 })).toEqual({ item: 'X1', fields: { Value: '3' } });
  });
});

describe('replay pacing', () => {
  it('spaces updates by their TimeStamps divided by the speed, never backwards', () => {
    const updates = [u('A', '10'), u('B', undefined), u('A', '10.001'), u('B', '10.0005'), u('A', '10.002')];
    expect(replayOffsets(updates, 1)).toEqual([0, 0, 3600, 3600, 7200].map((x) => expect.closeTo(x, 6)));
    expect(replayOffsets(updates, 10)[4]).toBeCloseTo(720, 6);
    expect(replayOffsets(updates, Number.POSITIVE_INFINITY)).toEqual([0, 0, 0, 0, 0]);
    expect(() => replayOffsets(updates, 0)).toThrow(/speed/);
  });

  it('plays into the feed on time, re-stamping when asked, and ends', () => {
    vi.useFakeTimers({ now: Date.parse('2026-05-01T00:00:00.000Z') });
    try {
      const feed = createItemFeed();
      const seen: string[] = [];
      feed.onChange((changes) => {
        for (const c of changes) seen.push(`${c.item}@${c.values[0]}=${c.values[1]}`);
      });
      let ended = false;
      const start = Date.now();
      const handle = startReplay(feed, [u('TIME_000001', '100', '100'), u('A', '100.0005', '7')], {
        speed: 2,
        retime: true,
        onEnd: () => {
          ended = true;
        },
      });
      expect(seen).toHaveLength(1);
      vi.advanceTimersByTime(899);
      expect(seen).toHaveLength(1);
      vi.advanceTimersByTime(1);
      expect(ended).toBe(true);
      const [clock, a] = seen.map((s) => s.split('@')[1] ?? '');
      const [clockTs, clockValue] = (clock ?? '').split('=');
      expect(parseIssTimestamp(clockTs, start)).toBe(start);
      expect(clockValue).toBe(clockTs); // the clock's Value follows its TimeStamp
      expect(parseIssTimestamp((a ?? '').split('=')[0], start)).toBe(start + 900);
      handle.stop();
    } finally {
      vi.useRealTimers();
    }
  });

  it('loops with fresh TimeStamps and stops on request', () => {
    vi.useFakeTimers({ now: Date.parse('2026-05-01T00:00:00.000Z') });
    try {
      const feed = createItemFeed();
      const stamps: string[] = [];
      feed.onChange((changes) => {
        for (const c of changes) stamps.push(String(c.values[0]));
      });
      const handle = startReplay(feed, [u('A', '5'), u('A', '5.0001')], {
        speed: 1,
        loop: true,
        retime: true,
      });
      vi.advanceTimersByTime(5_000);
      handle.stop();
      const count = stamps.length;
      vi.advanceTimersByTime(5_000);
      expect(stamps.length).toBe(count);
      expect(count).toBeGreaterThanOrEqual(4);
      expect(new Set(stamps).size).toBe(stamps.length);
      expect(() => startReplay(feed, [u('A', '5')], { speed: Number.POSITIVE_INFINITY, loop: true })).toThrow(
        /finite/,
      );
    } finally {
      vi.useRealTimers();
    }
  });
});
