import { describe, expect, it } from 'vitest';
import { ROW_OVERHEAD } from '../outbox/schema.js';
import { type AppendRequest, outgoingRows, packAppends, unpackAppends } from './handoff.js';

const row = (obs: string, monoMs: number | null = null) => ({
  obs,
  bytes: Buffer.byteLength(obs) + ROW_OVERHEAD,
  receivedMs: 1_700_000_000_123,
  monoMs,
});

describe('hand-off of appends to the buffer thread', () => {
  it('unpacks what was packed: rows, deliveries, retained states and the no-wait flag', () => {
    const appends: AppendRequest[] = [
      {
        id: 1,
        rows: [row('{"v":1}'), row('{"t":"é ✓ 𝄞 \\ud800"}', 12_345)],
        delivery: {
          clientId: 'sensor-ü',
          packetId: 65_535,
          hash: new Uint8Array(16).fill(7),
          mayBeResend: true,
        },
        noWait: false,
      },
      { id: 2, rows: [row('{"v":2}')], noWait: true },
      {
        id: 9_007_199_254_740_000,
        rows: [row('{"v":3}')],
        delivery: { clientId: 'c', packetId: 1, hash: new Uint8Array(16).fill(1), mayBeResend: false },
        retained: { topic: 'a/b', payloadHash: new Uint8Array(16).fill(2), replayed: true },
        noWait: false,
      },
      { id: 4, rows: [], noWait: false },
    ];
    const { group, transfer } = packAppends(appends);
    expect(transfer).toHaveLength(3);
    const back = unpackAppends(structuredClone(group, { transfer }));
    expect(
      back.map((a) => ({ ...a, delivery: a.delivery && { ...a.delivery, hash: [...a.delivery.hash] } })),
    ).toEqual(
      appends.map((a) => ({
        ...a,
        ...(a.delivery ? { delivery: { ...a.delivery, hash: [...a.delivery.hash] } } : {}),
      })),
    );
    expect([...(back[2]?.retained?.payloadHash ?? [])]).toEqual(new Array(16).fill(2));
  });

  it('carries whatever the stored observation holds, fields it does not know included', () => {
    const obs = JSON.stringify({ id: 'x', trace: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    const [a] = unpackAppends(packAppends([{ id: 1, rows: [row(obs)], noWait: false }]).group);
    expect(a?.rows[0]?.obs).toBe(obs);
  });

  it('packs a group into transferable buffers whose size follows the rows, not a copy per reading', () => {
    const many: AppendRequest[] = Array.from({ length: 1000 }, (_, i) => ({
      id: i,
      rows: [row(`{"v":${i}}`)],
      noWait: false,
    }));
    const { group } = packAppends(many);
    expect(group.strs).toHaveLength(0);
    expect(group.json.length).toBe(many.reduce((s, a) => s + (a.rows[0]?.obs.length ?? 0), 0));
    expect(unpackAppends(group).map((a) => a.rows[0]?.obs)).toEqual(many.map((a) => a.rows[0]?.obs));
  });

  it('counts each row in UTF-8 bytes as it writes it, across groups larger than its scratch space', () => {
    const texts = ['{"t":"é ✓ 𝄞"}', `{"big":"${'ü'.repeat(300_000)}"}`, '{"v":1}'];
    const first = packAppends(texts.map((t, i) => ({ id: i, rows: [row(t)], noWait: false })));
    const kept = [...first.group.json];
    const second = packAppends([{ id: 9, rows: [row('{"other":"bytes"}')], noWait: false }]);
    expect([...first.group.json]).toEqual(kept);
    expect(Buffer.from(first.group.json).toString('utf8')).toBe(texts.join(''));
    const back = unpackAppends(first.group);
    expect(back.map((a) => a.rows[0])).toEqual(texts.map((t) => row(t)));
    expect(unpackAppends(second.group)[0]?.rows[0]?.obs).toBe('{"other":"bytes"}');
  });

  it('makes the rows of an append from its observations, the clock-unsynced ones with their monotonic time', () => {
    const base = {
      id: 'a'.repeat(64),
      source: 'mqtt',
      edge: 'e',
      station: 's',
      variable: 'v',
      value: 1,
      unit: '1',
      time: '2026-01-01T00:00:00.000Z',
      received: '2026-01-01T00:00:00.000Z',
    };
    const rows = outgoingRows([base, { ...base, quality: ['edge_time', 'clock_unsynced'] }], 1_000, 77);
    expect(rows).toEqual([
      { obs: JSON.stringify(base), receivedMs: 1_000, monoMs: null },
      {
        obs: JSON.stringify({ ...base, quality: ['edge_time', 'clock_unsynced'] }),
        receivedMs: 1_000,
        monoMs: 77,
      },
    ]);
    const [a] = unpackAppends(packAppends([{ id: 1, rows, noWait: false }]).group);
    expect(a?.rows.map((r) => r.bytes)).toEqual(rows.map((r) => Buffer.byteLength(r.obs) + ROW_OVERHEAD));
  });
});
