import { type Observation, observationId } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { checkBatch, timeWindow } from './batch-check.js';

const NOW = Date.parse('2026-12-01T12:00:00.000Z');
const window = timeWindow(NOW, { maxAgeMs: 7 * 86_400_000, maxFutureMs: 600_000 });

function obs(edge: string, over: Partial<Observation> = {}): Observation {
  const o = {
    source: 'mqtt',
    edge,
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
const message = (edge: string, observations: unknown[]) =>
  new TextEncoder().encode(
    JSON.stringify({
      v: 1,
      edge,
      seq: [1, observations.length],
      sent: '2026-12-01T11:00:01.000Z',
      observations,
    }),
  );

describe('checkBatch', () => {
  it('keeps the good observations of a batch and sets each bad one aside with its reason', () => {
    const good = [obs('gw-1'), obs('gw-1', { value: 22 })];
    const bad = [
      obs('gw-1', { value: null, text: 'hot\u0000x' }),
      { ...obs('gw-1'), time: '2026-13-45T25:61:61.000Z' },
      obs('gw-1', { time: '2036-01-01T00:00:00.000Z' }),
      obs('gw-1', { time: '1970-01-01T00:00:00.000Z' }),
      { ...obs('gw-1', { value: 23 }), id: 'f'.repeat(64) },
      { ...obs('gw-1'), edge: 'gw-2' },
      { ...obs('gw-1'), station: 'x'.repeat(201) },
    ];
    const r = checkBatch('fb.obs.gw-1', message('gw-1', [good[0], ...bad, good[1]]), window);
    if (!r.ok) throw new Error(r.reason);
    expect(r.batch.observations).toEqual(good);
    expect(r.rejected.map((x) => [x.index, x.kind])).toEqual([
      [1, 'text'],
      [2, 'time_invalid'],
      [3, 'time_range'],
      [4, 'time_range'],
      [5, 'id_mismatch'],
      [6, 'schema'],
      [7, 'schema'],
    ]);
    const reasons = r.rejected.map((x) => x.reason);
    expect(reasons[0]).toMatch(/^observations\[1\]: text: contains the NUL character/);
    expect(reasons[1]).toMatch(/^observations\[2\]: time: expected a real date/);
    expect(reasons[2]).toMatch(/in the future, beyond the accepted 10 min \(time 2036-01-01/);
    expect(reasons[3]).toMatch(/in the past, beyond the accepted 7 d/);
    expect(reasons[4]).toMatch(/is not the id of its fields/);
  });

  it('rejects a message whole when its envelope is unusable', () => {
    expect(checkBatch('fb.obs.gw-1', new TextEncoder().encode('{"v":1,'), window)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not valid JSON/),
    });
    expect(checkBatch('fb.obs.gw-1', message('gw-2', [obs('gw-2')]), window)).toMatchObject({
      ok: false,
      reason: 'batch claims edge "gw-2" but was published on fb.obs.gw-1',
    });
    const impossibleSent = new TextEncoder().encode(
      JSON.stringify({
        v: 1,
        edge: 'gw-1',
        seq: [1, 1],
        sent: '2026-02-30T00:00:00.000Z',
        observations: [obs('gw-1')],
      }),
    );
    expect(checkBatch('fb.obs.gw-1', impossibleSent, window)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/sent: expected a real date/),
    });
  });

  it('rejects a message over the protocol batch size whole, even when its observations are valid', () => {
    const big = Array.from({ length: 499 }, (_, i) => obs('gw-1', { station: `st-${'x'.repeat(600)}-${i}` }));
    const data = message('gw-1', big);
    expect(data.byteLength).toBeGreaterThan(256 * 1024);
    expect(checkBatch('fb.obs.gw-1', data, window)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^batch of \d+ bytes is over the protocol's limit of 262144 bytes$/),
    });
  });

  it('keeps a batch whose observations are all bad, empty', () => {
    const r = checkBatch(
      'fb.obs.gw-1',
      message('gw-1', [obs('gw-1', { value: null, text: '\u0000' })]),
      window,
    );
    expect(r).toMatchObject({ ok: true, batch: { observations: [] }, rejected: [{ kind: 'text' }] });
  });
});
