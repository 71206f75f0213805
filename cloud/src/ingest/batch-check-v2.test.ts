import { zstdCompressSync } from 'node:zlib';
import { type BatchHead, encodeBatchV2, type Observation, observationId } from '@fieldbeam/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkBatch, timeWindow } from './batch-check.js';

const NOW = Date.parse('2026-12-01T12:00:00.000Z');
const window = timeWindow(NOW, { maxAgeMs: 7 * 86_400_000, maxFutureMs: 600_000 });

function obs(over: Partial<Observation> = {}): Observation {
  const o = {
    source: 'mqtt',
    edge: 'gw-1',
    station: 'st-1',
    variable: 'air_temperature',
    value: 21.5 as number | null,
    unit: 'degC',
    time: '2026-12-01T11:00:00.000Z',
    received: '2026-12-01T11:00:00.010Z',
    ...over,
  };
  return { id: observationId(o), ...o, ...(over.id ? { id: over.id } : {}) };
}
const head = (n: number): BatchHead => ({
  edge: 'gw-1',
  seq: [1, n],
  sent: '2026-12-01T11:00:01.000Z',
  buffer: { id: 'b1', start: 1 },
});
const v2 = (observations: unknown[]) => encodeBatchV2(head(observations.length), observations);
const v1 = (observations: unknown[]) =>
  new TextEncoder().encode(JSON.stringify({ v: 1, ...head(observations.length), observations }));

describe('checkBatch, v2 batches', () => {
  it('gives what the same batch in v1 gives: the good kept, each bad one set aside with its reason', () => {
    const good = [obs(), obs({ value: 22 }), obs({ station: 'st-2', sensor: 'th', quality: ['edge_time'] })];
    const bad = [
      obs({ value: null, text: 'hot\u0000x' }),
      obs({ time: '2036-01-01T00:00:00.000Z' }),
      { ...obs({ value: 23 }), id: 'f'.repeat(64), extra: 1 },
      { ...obs(), edge: 'gw-2' },
      { ...obs(), station: 'x'.repeat(201) },
      42,
    ];
    const all = [good[0], ...bad, good[1], good[2]];
    const a = checkBatch('fb.obs.gw-1', v1(all), window);
    const b = checkBatch('fb.obs.gw-1', v2(all), window);
    if (!a.ok || !b.ok) throw new Error('unreadable');
    expect(b.batch).toEqual(a.batch);
    expect(b.batch.observations).toEqual(good);
    expect(b.rejected.map((x) => [x.index, x.kind])).toEqual(a.rejected.map((x) => [x.index, x.kind]));
    expect(b.rejected.map((x) => x.kind)).toEqual([
      'text',
      'time_range',
      'schema',
      'schema',
      'schema',
      'schema',
    ]);
  });

  it('an observation the columns cannot carry travels whole, with its id, and is judged as in v1', () => {
    const wrong = { ...obs({ value: 23 }), id: 'f'.repeat(64), lat: 'x' };
    const r = checkBatch('fb.obs.gw-1', v2([wrong, obs()]), window);
    expect(r.ok && r.rejected.map((x) => x.kind)).toEqual(['schema']);
  });

  it('takes up to the v2 bound of observations, over the v1 one', () => {
    const many = Array.from({ length: 5000 }, (_, i) => obs({ value: i }));
    const r = checkBatch('fb.obs.gw-1', v2(many), window);
    expect(r.ok && r.batch.observations.length).toBe(5000);
    expect(r.ok && r.rejected).toEqual([]);
  });

  it('dead-letters damaged, truncated, oversized and bomb v2 messages with a reason, never throws', () => {
    const good = v2([obs(), obs({ value: 1 })]);
    const bomb = Buffer.concat([
      Buffer.from([0xfb, 2, 1]),
      zstdCompressSync(Buffer.alloc(32 * 1024 * 1024, 32)),
    ]);
    const n5001 = Array.from({ length: 5001 }, (_, i) => obs({ value: i }));
    const cases: [Uint8Array, RegExp][] = [
      [bomb, /^v2 batch: decompresses to more than/],
      [good.subarray(0, good.length - 5), /^v2 batch: /],
      [Buffer.concat([good, Buffer.alloc(800 * 1024)]), /^v2 batch: \d+ bytes, over the limit/],
      [Buffer.from([0xfb, 2, 7, 1, 2, 3]), /unknown codec 7/],
      [v2(n5001), /n must be 1-5000/],
    ];
    for (const [data, reason] of cases) {
      expect(checkBatch('fb.obs.gw-1', data, window)).toMatchObject({
        ok: false,
        reason: expect.stringMatching(reason),
      });
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (tail) => {
        const r = checkBatch('fb.obs.gw-1', Buffer.concat([good.subarray(0, 3), tail]), window);
        expect(r.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a v2 batch that claims another edge', () => {
    const data = encodeBatchV2({ ...head(1), edge: 'gw-2' }, [obs({ edge: 'gw-2' })]);
    expect(checkBatch('fb.obs.gw-1', data, window)).toMatchObject({
      ok: false,
      reason: 'batch claims edge "gw-2" but was published on fb.obs.gw-1',
    });
  });
});
