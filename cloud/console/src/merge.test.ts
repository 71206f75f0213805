import { describe, expect, it } from 'vitest';
import type { DatasetWindow, FleetEdge, Point } from '../../src/console/console-api.ts';
import { appendPoints, maxPoints, mergeFleet, mergePoints, mergeWindows } from './merge.ts';

const pts = (...ts: number[]): Point[] => ts.map((t) => [t, t / 10]);

describe('live points', () => {
  it('appends only points newer than the newest held, in time order', () => {
    expect(appendPoints(pts(1, 2, 3), pts(5, 2, 4, 3))).toEqual(pts(1, 2, 3, 4, 5));
  });
  it('returns the same array when nothing is new (no re-render)', () => {
    const held = pts(1, 2);
    expect(appendPoints(held, pts(1, 2))).toBe(held);
  });
  it(`keeps the newest ${maxPoints} points of a long-open page`, () => {
    const many = Array.from({ length: maxPoints }, (_, i) => i);
    const after = appendPoints(pts(...many), pts(maxPoints, maxPoints + 1));
    expect(after.length).toBe(maxPoints);
    expect(after[0]?.[0]).toBe(2);
    expect(after.at(-1)?.[0]).toBe(maxPoints + 1);
  });
  it('merges an answer with live points already held, each time once', () => {
    expect(mergePoints(pts(1, 3, 5), pts(4, 5, 6))).toEqual(pts(1, 3, 4, 5, 6));
  });
});

const win = (start: string, state: DatasetWindow['state'], version: number | null): DatasetWindow => ({
  start,
  end: start,
  state,
  version,
  rows: null,
  bytes: null,
  builtAt: null,
  lastError: null,
  arrowUrl: null,
  geoparquetUrl: null,
});

describe('dataset windows', () => {
  it('replaces a changed window, adds a new one, newest first', () => {
    const held = [win('2026-12-06T00:00:10Z', 'waiting', null), win('2026-12-06T00:00:00Z', 'built', 1)];
    const merged = mergeWindows(held, [
      win('2026-12-06T00:00:10Z', 'built', 1),
      win('2026-12-06T00:00:20Z', 'waiting', null),
    ]);
    expect(merged.map((w) => [w.start.slice(17, 19), w.state])).toEqual([
      ['20', 'waiting'],
      ['10', 'built'],
      ['00', 'built'],
    ]);
  });
});

describe('fleet rows', () => {
  it('replaces changed rows by id and adds new edges', () => {
    const row = (id: string, online: boolean) => ({ id, online }) as FleetEdge;
    const merged = mergeFleet([row('a', true), row('b', true)], [row('b', false), row('c', true)]);
    expect(merged.map((e) => [e.id, e.online])).toEqual([
      ['a', true],
      ['b', false],
      ['c', true],
    ]);
  });
});
