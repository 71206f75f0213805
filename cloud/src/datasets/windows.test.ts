import { describe, expect, it } from 'vitest';
import {
  dueAt,
  isProvisional,
  parseDuration,
  parseWindowKey,
  windowKey,
  windowStartOf,
  windowsOverlapping,
} from './windows.js';

const H = 3_600_000;

describe('parseDuration', () => {
  it('reads fixed-length ISO-8601 durations', () => {
    expect(parseDuration('PT1H')).toBe(H);
    expect(parseDuration('P1D')).toBe(24 * H);
    expect(parseDuration('PT15M')).toBe(15 * 60_000);
    expect(parseDuration('PT0.5S')).toBe(500);
    expect(parseDuration('P1W')).toBe(7 * 24 * H);
    expect(parseDuration('P1DT12H')).toBe(36 * H);
  });
  it('refuses months, years and malformed text', () => {
    for (const bad of ['P1M', 'P1Y', 'PT', 'P', '1H', 'PT1X', '']) expect(() => parseDuration(bad)).toThrow();
  });
});

describe('windows', () => {
  const t = Date.parse('2026-11-30T12:34:56.789Z');
  it('aligns to the epoch in UTC', () => {
    expect(new Date(windowStartOf(t, H)).toISOString()).toBe('2026-11-30T12:00:00.000Z');
    expect(new Date(windowStartOf(t, 24 * H)).toISOString()).toBe('2026-11-30T00:00:00.000Z');
  });
  it('lists the windows a time range overlaps, ends inclusive', () => {
    const from = Date.parse('2026-11-30T11:59:59.999Z');
    const to = Date.parse('2026-11-30T13:00:00.000Z');
    expect(windowsOverlapping(from, to, H)?.map(windowKey)).toEqual([
      '2026-11-30T11:00:00Z',
      '2026-11-30T12:00:00Z',
      '2026-11-30T13:00:00Z',
    ]);
    expect(windowsOverlapping(t, t, H)).toHaveLength(1);
    expect(windowsOverlapping(0, 10_000 * H, H, 1000)).toBeUndefined();
  });
  it('round-trips window keys', () => {
    const s = windowStartOf(t, H);
    expect(parseWindowKey(windowKey(s))).toBe(s);
    expect(parseWindowKey('2026-11-30T12:00:00.000Z')).toBe(s);
    expect(parseWindowKey('yesterday')).toBeUndefined();
  });
});

describe('due time', () => {
  const end = Date.parse('2026-11-30T13:00:00Z');
  const w = { end, graceMs: 60_000, debounceMs: 5_000, provisional: false };
  it('waits for grace after the end and debounce after the data', () => {
    expect(dueAt(end - H, w)).toBe(end + 60_000);
    expect(dueAt(end + 10 * H, w)).toBe(end + 10 * H + 5_000);
  });
  it('builds open windows after the debounce when provisional builds are on', () => {
    expect(dueAt(end - H, { ...w, provisional: true })).toBe(end - H + 5_000);
    expect(isProvisional(end, w)).toBe(true);
    expect(isProvisional(end + 60_000, w)).toBe(false);
  });
  it('caps the debounce at max_delay after the window became dirty', () => {
    const live = { ...w, provisional: true, maxDelayMs: 20_000 };
    const dirty = end - H;
    // Data every second keeps the debounce moving; max_delay does not move with it.
    expect(dueAt(dirty + 1_000, live, dirty)).toBe(dirty + 6_000);
    expect(dueAt(dirty + 18_000, live, dirty)).toBe(dirty + 20_000);
    expect(dueAt(dirty + 60_000, live, dirty)).toBe(dirty + 20_000);
    // Without provisional builds the window still waits for its end and grace.
    expect(dueAt(dirty + 60_000, { ...live, provisional: false }, dirty)).toBe(end + 60_000);
    expect(dueAt(end + 10 * H, { ...live, provisional: false }, end + 10 * H - 30_000)).toBe(
      end + 10 * H - 10_000,
    );
  });
});
