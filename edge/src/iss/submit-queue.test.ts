import type { Observation } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import type { ObservationSink } from '../readings.js';
import { createSubmitQueue } from './submit-queue.js';

const obs = (variable: string, n: number) => ({ id: `${variable}-${n}`, variable }) as unknown as Observation;

/** A sink that commits into `committed` and refuses while `full` is set. */
function fakeSink() {
  const sink = {
    full: false,
    calls: 0,
    committed: [] as string[],
    async submit(batch: Observation[]) {
      sink.calls++;
      await new Promise((r) => setTimeout(r, 1));
      if (sink.full) throw new Error('buffer full');
      sink.committed.push(...batch.map((o) => o.id));
    },
  };
  return sink satisfies ObservationSink;
}

const until = async (cond: () => boolean, ms = 2_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('submit queue', () => {
  it('commits everything, in order, coalescing a burst into few calls', async () => {
    const sink = fakeSink();
    const q = createSubmitQueue({ sink, keyOf: (o) => o.variable });
    for (let i = 0; i < 100; i++) q.push(obs(`v${i % 7}`, i));
    await until(() => sink.committed.length === 100);
    expect(sink.committed).toEqual(Array.from({ length: 100 }, (_, i) => `v${i % 7}-${i}`));
    expect(sink.calls).toBe(1);
    expect(q.stats()).toEqual({ queued: 0, committed: 100, refusals: 0, dropped: 0 });
    await q.close();
  });

  it('keeps the latest value per key while the sink refuses, counts what it replaces, then recovers', async () => {
    const sink = fakeSink();
    sink.full = true;
    const refused: number[] = [];
    const q = createSubmitQueue({
      sink,
      keyOf: (o) => o.variable,
      retryMinMs: 10,
      retryMaxMs: 20,
      onRefused: (_e, queued) => refused.push(queued),
    });
    q.push(obs('a', 1));
    q.push(obs('b', 1));
    await until(() => q.stats().refusals >= 1);
    q.push(obs('a', 2));
    q.push(obs('a', 3));
    await until(() => q.stats().refusals >= 3);
    expect(q.stats().queued).toBe(2);
    sink.full = false;
    await until(() => q.stats().queued === 0);
    expect(sink.committed.sort()).toEqual(['a-3', 'b-1']);
    expect(q.stats().dropped).toBe(2);
    expect(refused.length).toBeGreaterThanOrEqual(3);
    // Once the sink accepts again nothing is collapsed.
    q.push(obs('a', 4));
    q.push(obs('a', 5));
    await until(() => sink.committed.length === 4);
    expect(sink.committed.slice(2)).toEqual(['a-4', 'a-5']);
    await q.close();
  });

  it('collapses to the latest per key above maxQueued even while the sink accepts', async () => {
    const sink = fakeSink();
    const q = createSubmitQueue({ sink, keyOf: (o) => o.variable, maxQueued: 4 });
    for (let i = 0; i < 10; i++) q.push(obs(`v${i % 2}`, i));
    await until(() => q.stats().queued === 0);
    // 5 queued > 4: collapsed to [v1-3, v0-4]; three more make 5 again: collapsed to [v0-6, v1-7].
    expect(sink.committed).toEqual(['v0-6', 'v1-7', 'v0-8', 'v1-9']);
    expect(q.stats().dropped).toBe(6);
    await q.close();
  });

  it('flushes on close, and counts what a refusing sink leaves behind', async () => {
    const sink = fakeSink();
    const q = createSubmitQueue({ sink, keyOf: (o) => o.variable });
    q.push(obs('a', 1));
    await q.close();
    expect(sink.committed).toEqual(['a-1']);
    q.push(obs('a', 2));
    expect(q.stats().dropped).toBe(1);

    const full = fakeSink();
    full.full = true;
    const q2 = createSubmitQueue({ sink: full, keyOf: (o) => o.variable, retryMinMs: 60_000 });
    q2.push(obs('a', 1));
    await until(() => q2.stats().refusals === 1);
    const started = Date.now();
    await q2.close(1_000);
    expect(Date.now() - started).toBeLessThan(500);
    expect(q2.stats()).toMatchObject({ queued: 0, refusals: 2, dropped: 1 });
  });
});
