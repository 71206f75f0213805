import type { EdgeStatus } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import type { FullPolicy } from './outbox/outbox.js';
import { formatStatus } from './status.js';

const status = (buffer: Partial<EdgeStatus['buffer']> & { policy?: FullPolicy }) => ({
  v: 1 as const,
  edge: 'gw-17',
  time: '2026-12-05T12:00:00.000Z',
  version: '0.1.0',
  uptimeS: 60,
  buffer: {
    depth: 3,
    bytes: 4096,
    capacityBytes: 64 * 1024 * 1024,
    oldestUnsentAgeS: 1.5,
    dropped: 0,
    ...buffer,
  },
  rates: { inPerS: 1, outPerS: 1 },
  rejected: 0,
  diskFreeBytes: null,
  clock: 'synced' as const,
  uplink: 'connected' as const,
});

const line = (text: string, label: string) => text.split('\n').find((l) => l.startsWith(label));

describe('formatStatus: what a full buffer does', () => {
  it('under block says that intake blocks, with no drop count that cannot grow', () => {
    const text = formatStatus(status({ policy: 'block' }));
    expect(line(text, 'when full')).toBe(
      'when full   block: blocks intake (MQTT acknowledgements wait, sensors back off)',
    );
    expect(text).not.toMatch(/drop_oldest|dropped/);
  });

  it('under block names readings dropped earlier under drop_oldest (the count is kept in the buffer file)', () => {
    expect(line(formatStatus(status({ policy: 'block', dropped: 12 })), 'when full')).toBe(
      'when full   block: blocks intake (MQTT acknowledgements wait, sensors back off); 12 readings dropped earlier under drop_oldest',
    );
  });

  it('under drop_oldest counts the readings dropped', () => {
    expect(line(formatStatus(status({ policy: 'drop_oldest', dropped: 7 })), 'when full')).toBe(
      'when full   drop_oldest: 7 readings dropped',
    );
  });

  it('from an agent that does not say its policy, gives the count alone', () => {
    const text = formatStatus(status({ dropped: 2 }));
    expect(line(text, 'when full')).toBe('when full   2 readings dropped (policy not reported)');
    expect(text).not.toMatch(/drop_oldest/);
  });
});

describe('buildEdgeStatus: the buffer file and its known gaps', () => {
  it('reports the buffer id with the readings dropped and the inputs quarantined by that file', async () => {
    const { EdgeStatus } = await import('@fieldbeam/protocol');
    const { buildEdgeStatus } = await import('./status.js');
    const s = buildEdgeStatus({
      edge: 'gw-17',
      version: '0.1.0',
      startedMs: Date.now(),
      buffer: {
        depth: 0,
        bytes: 0,
        capacityBytes: 1024,
        oldestReceivedMs: null,
        dropped: 120,
        quarantined: 3,
        appended: 0,
        acked: 0,
      },
      inPerS: 0,
      outPerS: 0,
      rejected: 3,
      diskFree: null,
      uplinkConnected: true,
      clock: 'synced',
      bufferId: 'a1b2c3d4e5f6',
    });
    expect(s).toMatchObject({ bufferId: 'a1b2c3d4e5f6', gaps: { droppedOldest: 120, quarantined: 3 } });
    expect(EdgeStatus.safeParse(s).success).toBe(true);
  });
});

describe('formatStatus: sensors and central config', () => {
  it('counts sensors by origin and says which central revision runs, or why one was refused', () => {
    const s = {
      ...status({}),
      sensorCount: 3,
      sensors: [
        { topic: 'a/+station', decoder: 'number', origin: 'local' as const, lastReadingTime: null },
        { topic: 'z/+station', decoder: 'zigbee2mqtt', origin: 'central' as const, lastReadingTime: null },
        { topic: 'tele/k/SENSOR', decoder: 'tasmota', origin: 'auto' as const, lastReadingTime: null },
      ],
      config: {
        revision: 7,
        appliedAt: '2026-12-05T00:00:00.000Z',
        error: 'all revision 9: sensors.0.topic: bad',
        refusedRevision: 9,
      },
    };
    const text = formatStatus(s);
    expect(line(text, 'sensors')).toBe('sensors     3 (local 1, central 1, auto 1)');
    expect(line(text, 'central')).toBe('central     revision 7, applied 2026-12-05T00:00:00.000Z');
    expect(text).toContain('  REFUSED revision 9: all revision 9: sensors.0.topic: bad');
    expect(
      line(formatStatus({ ...s, config: { ...s.config, revision: null, error: null } }), 'central'),
    ).toBe('central     none applied');
  });
});
