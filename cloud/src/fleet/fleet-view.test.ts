import type { EdgeStatus } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import type { FleetEdgeRow } from './fleet-store.js';
import {
  fleetEntries,
  formatBytes,
  formatCompleteness,
  formatEdgeStatus,
  formatFleetTable,
  offlineMessage,
} from './fleet-view.js';

const NOW = Date.parse('2026-12-05T12:00:00Z');
const row = (edge: string, agoMs: number, extra: Partial<FleetEdgeRow> = {}): FleetEdgeRow => ({
  edge,
  firstSeen: new Date(NOW - 86_400_000),
  lastSeen: new Date(NOW - agoMs),
  intervalMs: 5000,
  version: '0.1.0',
  uplink: 'connected',
  bufferDepth: 0,
  bufferBytes: 0,
  bufferCapacityBytes: 1_000_000,
  oldestUnsentAgeS: null,
  dropped: 0,
  rejected: 0,
  clock: 'synced',
  diskFreeBytes: 1e9,
  sensorCount: 3,
  configRevision: null,
  ...extra,
});

describe('fleetEntries', () => {
  it('merges the registry with registered edges never seen, by id, and applies the offline rule', () => {
    const entries = fleetEntries(
      [row('gw-b', 2000), row('gw-a', 16_000), row('gw-x', 1000)],
      ['gw-a', 'gw-b', 'gw-c'],
      NOW,
    );
    expect(entries.map((e) => [e.id, e.online, e.registered])).toEqual([
      ['gw-a', false, true],
      ['gw-b', true, true],
      ['gw-c', false, true],
      ['gw-x', true, false],
    ]);
    expect(entries[2]).toMatchObject({ lastSeen: null, bufferDepth: null, offlineAfterS: 30 });
    expect(entries[1]).toMatchObject({
      lastSeen: '2026-12-05T11:59:58.000Z',
      lastSeenAgeS: 2,
      offlineAfterS: 15,
    });
  });
});

describe('formatFleetTable', () => {
  it('aligns the columns and counts the edges online', () => {
    const entries = fleetEntries(
      [
        row('gw-1', 3000, { bufferDepth: 120, bufferBytes: 36_000, oldestUnsentAgeS: 185 }),
        row('gw-17', 200_000),
      ],
      ['gw-1', 'gw-17', 'gw-new'],
      NOW,
    );
    expect(formatFleetTable(entries)).toBe(
      [
        'ID      ONLINE  LAST SEEN  VERSION  BUFFER           OLDEST UNSENT  SENSORS',
        'gw-1    yes     3 s ago    0.1.0    120 (36 kB, 4%)  3 min          3',
        'gw-17   no      3 min ago  0.1.0    0 (0 B, 0%)      -              3',
        'gw-new  no      never      -        -                -              -',
        '3 edges, 1 online',
        '',
      ].join('\n'),
    );
  });
});

describe('offlineMessage', () => {
  it('says when an edge was last seen, or that it never was', () => {
    const [seen, never] = fleetEntries([row('gw-17', 185_000)], ['gw-17', 'gw-18'], NOW);
    expect(offlineMessage(seen as never)).toBe(
      'gw-17 is offline, last seen 3 min ago (no heartbeat for 15 s makes it offline)',
    );
    expect(offlineMessage(never as never)).toMatch(
      /^gw-18 is offline: registered, but it has never sent a heartbeat/,
    );
  });
});

describe('formatBytes', () => {
  it('uses powers of 1000', () => {
    expect([formatBytes(999), formatBytes(1500), formatBytes(510_027_367), formatBytes(82e9)]).toEqual([
      '999 B',
      '1.5 kB',
      '510 MB',
      '82 GB',
    ]);
  });
});

describe('strings an edge sent', () => {
  // An edge fills its heartbeat's strings as it likes: printed raw, an escape sequence would reach
  // the operator's terminal (retitle it, hide lines, rewrite what is on screen) and a newline or a
  // bidi override would forge lines of the answer.
  const hostile = '\u001b]0;owned\u0007\u001b[2J\r\nedge gw-z: online\u009b31m\u202eevil';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

  it('reach neither the table nor the status as control characters', () => {
    const [entry] = fleetEntries([row('gw-1', 1000, { version: hostile })], ['gw-1'], NOW);
    const table = formatFleetTable([entry as NonNullable<typeof entry>]);
    expect(table).not.toMatch(CONTROLS);
    expect(table.split('\n')).toHaveLength(4);
    const status: EdgeStatus = {
      v: 1,
      edge: 'gw-1',
      time: '2026-12-05T12:00:00Z',
      version: hostile,
      uptimeS: 1,
      buffer: { depth: 0, bytes: 0, capacityBytes: 1, oldestUnsentAgeS: null, dropped: 0 },
      rates: { inPerS: 0, outPerS: 0 },
      rejected: 0,
      diskFreeBytes: null,
      clock: 'synced',
      uplink: 'connected',
      sensors: [
        { topic: hostile, decoder: hostile, station: hostile, origin: 'local', lastReadingTime: null },
      ],
      config: { revision: 1, appliedAt: null, error: hostile, refusedRevision: 2 },
      iss: { state: hostile, lastUpdateTime: null },
    };
    const text = formatEdgeStatus(entry as NonNullable<typeof entry>, status, true);
    expect(text).not.toMatch(CONTROLS);
    expect(text).toContain('edge gw-z: online');
    expect(text.split('\n').filter((l) => l.startsWith('edge '))).toHaveLength(1);
    const gaps = formatCompleteness({
      readings: 1,
      explained: { droppedOldest: 0 },
      unexplained: 1,
      buffers: [{ bufferId: hostile, unexplained: 1, unexplainedRanges: [[1, 1]] }],
    } as unknown as Parameters<typeof formatCompleteness>[0]);
    expect(gaps).not.toMatch(CONTROLS);
  });
});
