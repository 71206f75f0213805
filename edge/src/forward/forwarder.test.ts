import { describe, expect, it } from 'vitest';
import type { OutboxBatch, OutboxQueue } from '../outbox/outbox.js';
import { backoffMs, startForwarder } from './forwarder.js';
import type { Publisher } from './publisher.js';

/** In-memory outbox with the same contract as the SQLite one, to test the forwarder's logic alone. */
function memoryOutbox(n: number): OutboxQueue & { rows: Map<number, string> } {
  const rows = new Map<number, string>();
  for (let i = 1; i <= n; i++) rows.set(i, JSON.stringify({ value: i }));
  let taken = 0;
  return {
    rows,
    // Long enough that no random message id contains it by chance.
    bufferId: 'buffer-id-b1',
    bufferStart: 1,
    whenAppended: () => new Promise(() => {}),
    take(max) {
      const seqs = [...rows.keys()]
        .filter((s) => s > taken)
        .sort((a, b) => a - b)
        .slice(0, max);
      if (seqs.length === 0) return undefined;
      taken = seqs.at(-1) ?? taken;
      return {
        first: seqs[0] ?? 0,
        last: taken,
        rows: seqs.map((s) => rows.get(s) as string),
      } satisfies OutboxBatch;
    },
    ack(first, last) {
      for (let s = first; s <= last; s++) rows.delete(s);
    },
  };
}

const quick = {
  edge: 'gw',
  maxBatchObservations: 4,
  maxBatchBytes: 1e6,
  maxInFlight: 2,
  idleMs: 1,
  backoff: { initialMs: 1, maxMs: 2 },
};

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('forwarder', () => {
  it('deletes rows only after their ack and resends after failures', async () => {
    const box = memoryOutbox(25);
    const published: string[] = [];
    const failedIds: string[] = [];
    let calls = 0;
    const pub: Publisher = {
      connected: true,
      publishStatus() {},
      async publish(_subject, _data, msgId) {
        calls++;
        if (calls % 3 === 0) {
          failedIds.push(msgId);
          throw new Error('timeout');
        }
        published.push(msgId);
        return { duplicate: false };
      },
    };
    const fwd = startForwarder(box, pub, {
      edge: 'gw',
      maxBatchObservations: 4,
      maxBatchBytes: 1e6,
      maxInFlight: 2,
      idleMs: 1,
      backoff: { initialMs: 1, maxMs: 2 },
    });
    await until(() => box.rows.size === 0);
    await fwd.close();
    expect(box.rows.size).toBe(0);
    expect(fwd.failures).toBeGreaterThan(0);
    // A failed batch is sent again with the same boundaries, so JetStream can drop a repeat.
    expect(failedIds.length).toBeGreaterThan(0);
    for (const id of failedIds) expect(published).toContain(id);
    expect(new Set(published).size).toBe(published.length);
    // Every sequence number was covered by an acknowledged batch.
    const covered = new Set<number>();
    for (const id of published) {
      const [first, last] = (id.split(':')[2] ?? '').split('-').map(Number);
      for (let s = first ?? 0; s <= (last ?? -1); s++) covered.add(s);
    }
    for (let s = 1; s <= 25; s++) expect(covered.has(s)).toBe(true);
  });

  it('retries as soon as the uplink reconnects instead of sitting out the backoff', async () => {
    const box = memoryOutbox(3);
    let up = false;
    let reconnect = () => {};
    const pub: Publisher = {
      get connected() {
        return true;
      },
      publishStatus() {},
      async publish() {
        if (!up) throw new Error('connection lost');
        return { duplicate: false };
      },
      whenReconnected: () =>
        new Promise<void>((resolve) => {
          reconnect = resolve;
        }),
    };
    // A backoff of up to ten minutes: only the reconnect can make the forwarder try again in time.
    const fwd = startForwarder(box, pub, {
      edge: 'gw',
      maxBatchObservations: 10,
      maxBatchBytes: 1e6,
      maxInFlight: 1,
      idleMs: 1,
      backoff: { initialMs: 600_000, maxMs: 600_000 },
    });
    await until(() => fwd.failures > 0);
    expect(box.rows.size).toBe(3);
    up = true;
    reconnect();
    await until(() => box.rows.size === 0);
    expect(box.rows.size).toBe(0);
    await fwd.close();
  });

  it('gives each batch a message id nobody can predict, kept for its resends', async () => {
    const box = memoryOutbox(6);
    const ids: string[] = [];
    const pub: Publisher = {
      connected: true,
      publishStatus() {},
      async publish(_s, _d, msgId) {
        ids.push(msgId);
        return { duplicate: false };
      },
    };
    const fwd = startForwarder(box, pub, { ...quick, maxBatchObservations: 2 });
    await until(() => box.rows.size === 0);
    await fwd.close();
    expect(ids).toHaveLength(3);
    for (const id of ids) {
      // edge, 128 random bits, the batch's range; nothing derived from the buffer file.
      expect(id).toMatch(/^gw:[A-Za-z0-9_-]{22}:\d+-\d+$/);
      expect(id).not.toContain(box.bufferId);
    }
    expect(new Set(ids.map((id) => id.split(':')[1])).size).toBe(3);
  });

  it('does not delete a batch JetStream calls a duplicate on its first publish: reports it and sends it under a new id', async () => {
    const box = memoryOutbox(4);
    const taken = new Set<string>();
    const stored: string[] = [];
    const reported: string[] = [];
    const pub: Publisher = {
      connected: true,
      publishStatus() {},
      async publish(_s, data, msgId) {
        // Another publisher got to the first two ids this edge uses.
        if (taken.size < 2 && !taken.has(msgId)) {
          taken.add(msgId);
          return { duplicate: true };
        }
        stored.push(new TextDecoder().decode(data));
        return { duplicate: false };
      },
    };
    const fwd = startForwarder(
      box,
      pub,
      { ...quick, maxBatchObservations: 2, maxInFlight: 1 },
      { onUnexpectedDuplicate: (_b, msgId) => reported.push(msgId) },
    );
    await until(() => box.rows.size === 0);
    await fwd.close();
    expect(reported).toEqual([...taken]);
    expect(fwd.unexpectedDuplicates).toBe(2);
    // Every row went out in a stored message before it was deleted.
    const values = stored.flatMap(
      (m) => (JSON.parse(m) as { observations: { value: number }[] }).observations,
    );
    expect(values.map((o) => o.value).sort()).toEqual([1, 2, 3, 4]);
  });

  it('takes a duplicate on a resend as the earlier attempt, stored while its ack was lost', async () => {
    const box = memoryOutbox(2);
    const seen = new Set<string>();
    let calls = 0;
    const reported: string[] = [];
    const pub: Publisher = {
      connected: true,
      publishStatus() {},
      async publish(_s, _d, msgId) {
        calls++;
        const again = seen.has(msgId);
        seen.add(msgId);
        // The first attempt is stored, but its ack is lost.
        if (calls === 1) throw new Error('timeout');
        return { duplicate: again };
      },
    };
    const fwd = startForwarder(
      box,
      pub,
      { ...quick, maxBatchObservations: 2, maxInFlight: 1 },
      { onUnexpectedDuplicate: (_b, msgId) => reported.push(msgId) },
    );
    await until(() => box.rows.size === 0);
    await fwd.close();
    expect(calls).toBe(2);
    expect(seen.size).toBe(1);
    expect(reported).toEqual([]);
    expect(fwd.unexpectedDuplicates).toBe(0);
  });

  it('backs off with full jitter up to the cap', () => {
    expect(backoffMs(0, 100, 1000, () => 1)).toBe(100);
    expect(backoffMs(3, 100, 1000, () => 1)).toBe(800);
    expect(backoffMs(10, 100, 1000, () => 1)).toBe(1000);
    expect(backoffMs(10, 100, 1000, () => 0)).toBe(0);
  });
});

describe('batchMessage', () => {
  it('splices stored observation texts into a valid ObservationBatch', async () => {
    const { ObservationBatch, decodeMessage } = await import('@fieldbeam/protocol');
    const { toObservation } = await import('../readings.js');
    const rows = [1, 2].map((v) =>
      JSON.stringify(
        toObservation(
          { source: 'mqtt', edge: 'gw', station: 's' },
          { variable: 'v', value: v, unit: '1', timeMs: 1e12 },
          1e12,
        ),
      ),
    );
    const { batchMessage } = await import('./forwarder.js');
    const checked = decodeMessage(ObservationBatch, batchMessage('gw', { first: 7, last: 8, rows }, 1e12));
    expect(checked.ok && checked.value.seq).toEqual([7, 8]);
    expect(checked.ok && checked.value.observations.map((o) => o.value)).toEqual([1, 2]);
    // With its buffer account: the file's id and start, and the drops the batch carries.
    const buffer = { id: 'b1', start: 1 };
    const withDrops = batchMessage('gw', { first: 7, last: 8, rows, dropped: [[3, 5]] }, 1e12, buffer);
    const account = decodeMessage(ObservationBatch, withDrops);
    expect(account.ok && account.value.buffer).toEqual({ id: 'b1', start: 1, dropped: [[3, 5]] });
    const plain = decodeMessage(
      ObservationBatch,
      batchMessage('gw', { first: 7, last: 8, rows }, 1e12, buffer),
    );
    expect(plain.ok && plain.value.buffer).toEqual({ id: 'b1', start: 1 });
  });
});

describe('encodeBatch', () => {
  it('v1 and v2 messages of a batch decode to the same ObservationBatch', async () => {
    const { ObservationBatch, decodeBatchV2, decodeMessage } = await import('@fieldbeam/protocol');
    const { toObservation } = await import('../readings.js');
    const rows = [1, 2.5, -3].map((v, i) =>
      JSON.stringify(
        toObservation(
          { source: 'mqtt', edge: 'gw', station: `s${i % 2}` },
          { variable: 'v', value: v, unit: '1', timeMs: 1e12 + i },
          1e12 + 10 * i,
        ),
      ),
    );
    const { encodeBatch } = await import('./forwarder.js');
    const batch = { first: 7, last: 9, rows, dropped: [[3, 5]] as [number, number][] };
    const buffer = { id: 'b1', start: 1 };
    const v1 = decodeMessage(ObservationBatch, encodeBatch('v1', 'gw', batch, 1e12, buffer));
    const v2 = decodeBatchV2(encodeBatch('v2', 'gw', batch, 1e12, buffer));
    expect(v1.ok).toBe(true);
    expect(v2.ok && v2.envelope).toEqual(
      JSON.parse(new TextDecoder().decode(encodeBatch('v1', 'gw', batch, 1e12, buffer))),
    );
  });

  it('with encoding v2, batches are cut at v2BatchObservations and published in v2', async () => {
    const { isBatchV2, decodeBatchV2 } = await import('@fieldbeam/protocol');
    const box = memoryOutbox(25);
    const sizes: number[] = [];
    const pub: Publisher = {
      connected: true,
      publishStatus() {},
      async publish(_subject, data) {
        expect(isBatchV2(data)).toBe(true);
        const d = decodeBatchV2(data);
        sizes.push(d.ok ? d.envelope.observations.length : -1);
        return { duplicate: false };
      },
    };
    const fwd = startForwarder(box, pub, { ...quick, encoding: 'v2', v2BatchObservations: 10 });
    await until(() => box.rows.size === 0);
    await fwd.close();
    expect(sizes).toEqual([10, 10, 5]);
  });
});
