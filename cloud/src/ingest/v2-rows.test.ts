import { readFileSync } from 'node:fs';
import { type BatchHead, encodeBatchV2, type Observation, observationId } from '@fieldbeam/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { timeWindow } from './batch-check.js';
import { RowWriter } from './copy-binary.js';
import { type DecodedMessage, decodeForCommit, decodeObjects } from './decode-batch.js';
import { v2Rows } from './v2-rows.js';

const NOW = Date.parse('2026-12-01T12:00:00.000Z');
const window = timeWindow(NOW, { maxAgeMs: 7 * 86_400_000, maxFutureMs: 600_000 });
const head = (n: number, edge = 'gw-1'): BatchHead => ({
  edge,
  seq: [1, n],
  sent: '2026-12-01T11:00:01.000Z',
  buffer: { id: 'b1', start: 1 },
});

/** What the general path (observation objects) makes of a message. */
const general = (data: Uint8Array, w = window) => decodeObjects('fb.obs.gw-1', data, w, new RowWriter(64));
const plain = (data: Uint8Array, w = window) => v2Rows(data, 'gw-1', w, new RowWriter(64));

/** Both paths' answers, compared field by field (the rows byte for byte). */
function expectSame(fast: DecodedMessage, slow: DecodedMessage): void {
  expect(fast).toEqual(slow);
  if (fast.ok && slow.ok) {
    expect(Buffer.from(fast.rows.bytes).equals(Buffer.from(slow.rows.bytes))).toBe(true);
    expect([...fast.rows.offsets]).toEqual([...slow.rows.offsets]);
  }
}

// Times over three and a half days in any order (the day-by-day time writer meets every change of day).
const T0 = Date.parse('2026-11-28T00:00:00.000Z');
const word = fc.constantFrom('st-1', 'st-2', 'Zürich', 'air_temperature', 'x'.repeat(200), '日本');
const observation = fc
  .record(
    {
      source: fc.constantFrom('mqtt', 'http', 'tlcp'),
      station: word,
      sensor: word,
      variable: word,
      value: fc.oneof(
        fc.constant(null),
        fc.constant(-0),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        fc.integer(),
      ),
      text: fc.string({ maxLength: 20 }),
      unit: fc.constantFrom('degC', '%', '', 'u'.repeat(64)),
      at: fc.integer({ min: 0, max: 3.5 * 86_400_000 }),
      lag: fc.integer({ min: 0, max: 5000 }),
      lat: fc.double({ min: -90, max: 90, noNaN: true }),
      lon: fc.double({ min: -180, max: 180, noNaN: true }),
      alt: fc.double({ noNaN: true, noDefaultInfinity: true }),
      quality: fc.array(fc.constantFrom('edge_time', 'range', 'q'.repeat(64)), { maxLength: 3 }),
      trace: fc.constantFrom('4bf92f3577b34da6a3ce929d0e0e4736', '0af7651916cd43dd8448eb211c80319c'),
    },
    { requiredKeys: ['source', 'station', 'variable', 'value', 'unit', 'at', 'lag'] },
  )
  .map(({ at, lag, ...r }) => {
    const time = new Date(T0 + at).toISOString();
    const o = { ...r, edge: 'gw-1', time, received: new Date(T0 + at + lag).toISOString() };
    return { id: observationId(o), ...o } as Observation;
  });

describe('v2Rows (a plain v2 batch from its columns to COPY rows)', () => {
  it('writes what the general path writes, byte for byte, for any batch of good observations', () => {
    fc.assert(
      fc.property(fc.array(observation, { minLength: 1, maxLength: 40 }), (list) => {
        const data = encodeBatchV2(head(list.length), list);
        const slow = general(data);
        if (!slow.ok) throw new Error(slow.reason);
        const fast = plain(data);
        // Every observation the general path keeps is one this path takes.
        expect(slow.rejected).toEqual([]);
        expect(fast).toBeDefined();
        expectSame(fast as DecodedMessage, slow);
      }),
      { numRuns: 300 },
    );
  });

  it('leaves every batch with something to set aside to the general path', () => {
    const good: Observation = (() => {
      const o = {
        source: 'mqtt',
        edge: 'gw-1',
        station: 'st-1',
        variable: 't',
        value: 1,
        unit: 'degC',
        time: '2026-12-01T11:00:00.000Z',
        received: '2026-12-01T11:00:00.000Z',
      };
      return { id: observationId(o), ...o };
    })();
    const bad: Record<string, unknown>[] = [
      { time: '2036-01-01T00:00:00.000Z' },
      { time: '2020-01-01T00:00:00.000Z' },
      { station: 'x'.repeat(201) },
      { station: '' },
      { unit: 'u'.repeat(65) },
      { text: 'a\u0000b', value: null },
      { sensor: '\ud800' },
      { lat: 91 },
      { lon: -181 },
      { quality: ['q'.repeat(65)] },
      { quality: Array.from({ length: 17 }, () => 'q') },
      { trace: '00000000000000000000000000000000' },
      { text: 't'.repeat(4097), value: null },
      { extra: 1 },
    ];
    for (const change of bad) {
      const list = [good, { ...good, ...change }];
      const data = encodeBatchV2(head(2), list);
      const slow = general(data);
      expect(slow.ok && slow.rejected.length, JSON.stringify(change)).toBe(1);
      expect(plain(data), JSON.stringify(change)).toBeUndefined();
      // And what ingest decodes is the general path's answer.
      expect(decodeForCommit('fb.obs.gw-1', data, window)).toEqual(slow);
    }
  });

  it("leaves unreadable messages and another edge's batch to the general path", () => {
    const o = { source: 'mqtt', edge: 'gw-2', station: 's', variable: 'v', value: 1, unit: 'u' };
    const t = { time: '2026-12-01T11:00:00.000Z', received: '2026-12-01T11:00:00.000Z' };
    const other = encodeBatchV2(head(1, 'gw-2'), [{ id: observationId({ ...o, ...t }), ...o, ...t }]);
    expect(plain(other)).toBeUndefined();
    expect(general(other).ok).toBe(false);
    const damaged = other.slice(0, other.length - 4);
    expect(plain(damaged)).toBeUndefined();
    expect(general(damaged).ok).toBe(false);
  });

  it('agrees with the general path on the protocol golden vectors', () => {
    const golden = JSON.parse(
      readFileSync(new URL('../../../protocol/src/golden-batches.json', import.meta.url), 'utf8'),
    ) as { batch: { edge: string; observations: Observation[] }; v2Zstd: string };
    const data = Buffer.from(golden.v2Zstd, 'base64');
    const edge = golden.batch.edge;
    const at = Date.parse(golden.batch.observations[0]?.time ?? '');
    const w = timeWindow(at, { maxAgeMs: 86_400_000, maxFutureMs: 86_400_000 });
    const slow = decodeObjects(`fb.obs.${edge}`, data, w, new RowWriter(64));
    const fast = v2Rows(data, edge, w, new RowWriter(64));
    expect(slow.ok).toBe(true);
    if (fast) expectSame(fast, slow);
    else expect(slow.ok && slow.rejected.length).toBeGreaterThan(0);
  });
});
