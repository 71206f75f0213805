import { describe, expect, it } from 'vitest';
import type { IssSourceStatus } from './iss-source.js';
import { issState } from './iss-state.js';

const base: IssSourceStatus = {
  connection: 'CONNECTED:WS-STREAMING',
  connected: true,
  subscribed: true,
  signal: 'acquired',
  signalClass: '24',
  updates: 3,
  lastUpdateMs: Date.UTC(2026, 11, 5, 10),
  lastClockMs: null,
  committed: 0,
  queued: 0,
  suppressed: 0,
  duplicates: 0,
  empty: 0,
  rejected: 0,
  refusals: 0,
  dropped: 0,
  resets: 0,
  lastError: null,
};

describe('issState', () => {
  it('reports streaming, no signal, connecting and disconnected with the last update time', () => {
    expect(issState(base)).toEqual({ state: 'streaming', lastUpdateTime: '2026-12-05T10:00:00.000Z' });
    expect(issState({ ...base, signal: 'lost' }).state).toBe('no_signal');
    expect(issState({ ...base, subscribed: false }).state).toBe('connecting');
    expect(issState({ ...base, connected: false, connection: 'CONNECTING' }).state).toBe('connecting');
    expect(
      issState({ ...base, connected: false, connection: 'DISCONNECTED:WILL-RETRY', lastUpdateMs: null }),
    ).toEqual({
      state: 'disconnected',
      lastUpdateTime: null,
    });
  });
});
