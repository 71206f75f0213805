import { type EdgeStatus, statusLimits } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { newestPerEdge } from './fleet-store.js';
import {
  checkHeartbeat,
  formatAge,
  isOnline,
  MAX_HEARTBEAT_BYTES,
  MISSED_BEATS,
  offlineAfterMs,
} from './heartbeat.js';

const status = (edge: string, extra: Record<string, unknown> = {}): EdgeStatus => ({
  v: 1,
  edge,
  time: '2026-12-05T10:00:00.000Z',
  version: '0.1.0',
  uptimeS: 12,
  buffer: { depth: 3, bytes: 300, capacityBytes: 1000, oldestUnsentAgeS: 1.5, dropped: 0 },
  rates: { inPerS: 1, outPerS: 1 },
  rejected: 0,
  diskFreeBytes: 1e9,
  clock: 'synced',
  uplink: 'connected',
  ...extra,
});
const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

describe('checkHeartbeat', () => {
  it('takes an EdgeStatus from the edge its subject names', () => {
    const r = checkHeartbeat('fb.edge.gw-1.status', bytes(status('gw-1', { intervalMs: 5000 })));
    expect(r).toMatchObject({ ok: true, edge: 'gw-1', status: { intervalMs: 5000 } });
  });

  it('refuses a body naming another edge than the subject', () => {
    const r = checkHeartbeat('fb.edge.gw-2.status', bytes(status('gw-1')));
    expect(r).toMatchObject({ ok: false, problem: 'edge_mismatch' });
    expect(!r.ok && r.reason).toMatch(/fb\.edge\.gw-2\.status says it is from edge "gw-1"/);
  });

  it('refuses what is not JSON, not an EdgeStatus, or not on a heartbeat subject', () => {
    expect(checkHeartbeat('fb.edge.gw-1.status', bytes('{nope'))).toMatchObject({
      ok: false,
      problem: 'json',
    });
    const schema = checkHeartbeat('fb.edge.gw-1.status', bytes({ ...status('gw-1'), buffer: { depth: -1 } }));
    expect(schema).toMatchObject({ ok: false, problem: 'schema' });
    expect(!schema.ok && schema.reason).toMatch(/buffer\.depth/);
    expect(checkHeartbeat('fb.edge.gw-1.other', bytes(status('gw-1')))).toMatchObject({
      ok: false,
      problem: 'subject',
    });
  });

  it('refuses a heartbeat over MAX_HEARTBEAT_BYTES unread', () => {
    const big = bytes(status('gw-1', { version: 'x'.repeat(MAX_HEARTBEAT_BYTES) }));
    expect(checkHeartbeat('fb.edge.gw-1.status', big)).toMatchObject({ ok: false, problem: 'too_large' });
    // The largest legitimate heartbeat (every sensor, every field at its longest) fits.
    const sensor = {
      topic: 't'.repeat(256),
      decoder: 'd'.repeat(64),
      station: 's'.repeat(128),
      origin: 'central',
      lastReadingTime: '2026-12-05T10:00:00.000Z',
    };
    const full = bytes(
      status('gw-1', { sensors: Array.from({ length: statusLimits.maxSensors }, () => sensor) }),
    );
    expect(checkHeartbeat('fb.edge.gw-1.status', full).ok).toBe(true);
  });

  it('keeps every string storable in Postgres (no NUL, no lone surrogate)', () => {
    const r = checkHeartbeat('fb.edge.gw-1.status', bytes(status('gw-1', { version: 'a\u0000b\uD800c' })));
    expect(r.ok && r.status.version).toBe('a\uFFFDb\uFFFDc');
  });
});

describe('the offline rule', () => {
  it(`counts an edge offline after ${MISSED_BEATS} missed heartbeats of the interval it announced`, () => {
    expect(offlineAfterMs(5000)).toBe(15_000);
    expect(isOnline(0, 5000, 15_000)).toBe(true);
    expect(isOnline(0, 5000, 15_001)).toBe(false);
  });

  it("takes the agent's default interval (10 s) for a heartbeat that does not say its own", () => {
    expect(offlineAfterMs(null)).toBe(30_000);
    expect(isOnline(0, undefined, 29_000)).toBe(true);
  });

  it('counts an edge never seen offline', () => {
    expect(isOnline(null, 5000, 0)).toBe(false);
  });
});

describe('formatAge', () => {
  it('says an age in whole units', () => {
    expect(formatAge(12_400)).toBe('12 s');
    expect(formatAge(185_000)).toBe('3 min');
    expect(formatAge(3 * 3_600_000)).toBe('3 h');
    expect(formatAge(3 * 86_400_000)).toBe('3 d');
    expect(formatAge(-5)).toBe('0 s');
  });
});

describe('newestPerEdge', () => {
  it('keeps the newest heartbeat of each edge of a batch', () => {
    const beat = (edge: string, t: number, seq: number) => ({
      edge,
      seenAt: new Date(t),
      streamSeq: seq,
      status: status(edge),
    });
    const kept = newestPerEdge([beat('a', 2, 5), beat('a', 1, 6), beat('b', 1, 1), beat('a', 2, 7)]);
    expect(kept.map((b) => [b.edge, b.streamSeq])).toEqual([
      ['a', 7],
      ['b', 1],
    ]);
  });
});
