import { describe, expect, it } from 'vitest';
import { timeWindow } from './batch-check.js';
import { DecodeInterrupted, DecodeThreadDied, startDecoder } from './decode-pool.js';

const script = new URL('./fixtures/dying-decode-worker.mjs', import.meta.url);
const window = timeWindow(Date.now(), { maxAgeMs: 86_400_000, maxFutureMs: 600_000 });
const bytes = new TextEncoder().encode('{}');

async function until(cond: () => boolean) {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe('decode pool', () => {
  it('blames only the message a thread died on, and keeps the pool at its size', async () => {
    const ended: string[] = [];
    const d = startDecoder(2, { script, restartDelayMs: 10, onThreadEnd: (e) => ended.push(e.message) });
    try {
      expect(d.alive()).toBe(2);
      // Rounds of the same poison message, as redelivery would bring it, beside good neighbours.
      for (let round = 0; round < 4; round++) {
        await until(() => d.alive() === 2);
        const [poison, ...rest] = await Promise.allSettled([
          d.decode('fb.obs.gw.poison', bytes, window),
          d.decode('fb.obs.gw.a', bytes, window),
          d.decode('fb.obs.gw.b', bytes, window),
          d.decode('fb.obs.gw.c', bytes, window),
        ]);
        expect(poison.status === 'rejected' && poison.reason).toBeInstanceOf(DecodeThreadDied);
        // Neighbours are answered, or (queued behind the poison on its thread) told to try again.
        for (const r of rest) {
          if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(DecodeInterrupted);
          else expect(r.value).toMatchObject({ ok: false, reason: expect.stringMatching(/^seen /) });
        }
      }
      expect(ended.length).toBe(4);
      expect(ended[0]).toMatch(/exit code 3/);
      await until(() => d.alive() === 2);
      expect(d.alive()).toBe(2);
      // The replaced threads decode.
      await expect(d.decode('fb.obs.gw.after', bytes, window)).resolves.toMatchObject({
        reason: 'seen fb.obs.gw.after',
      });
    } finally {
      await d.close();
    }
  });

  it("bounds each thread's memory: a message that exhausts it ends the thread, not the process", async () => {
    const d = startDecoder(1, { script, restartDelayMs: 10, resourceLimits: { maxOldGenerationSizeMb: 32 } });
    try {
      const err = await d.decode('fb.obs.gw.hog', bytes, window).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DecodeThreadDied);
      expect(err).toMatchObject({
        outOfMemory: true,
        message: expect.stringMatching(/ERR_WORKER_OUT_OF_MEMORY/),
      });
      await until(() => d.alive() === 1);
      await expect(d.decode('fb.obs.gw', bytes, window)).resolves.toMatchObject({ reason: 'seen fb.obs.gw' });
    } finally {
      await d.close();
    }
  });

  it('pauses longer before each replacement of a thread that died unused, until one answers', async () => {
    const ended: string[] = [];
    const d = startDecoder(1, { script, restartDelayMs: 10, onThreadEnd: (e) => ended.push(e.message) });
    const poisonOnce = async () => {
      await until(() => d.alive() === 1);
      await d.decode('fb.obs.gw.poison', bytes, window).catch(() => {});
    };
    try {
      for (let i = 0; i < 3; i++) await poisonOnce();
      await until(() => d.alive() === 1);
      await d.decode('fb.obs.gw', bytes, window);
      await poisonOnce();
      expect(ended.map((m) => m.match(/replaced in (\d+) ms/)?.[1])).toEqual(['10', '20', '40', '10']);
    } finally {
      await d.close();
    }
  });

  it('decodes on the calling thread while no thread runs', async () => {
    const d = startDecoder(1, { script, restartDelayMs: 60_000 });
    try {
      await expect(d.decode('fb.obs.gw.poison', bytes, window)).rejects.toBeInstanceOf(DecodeThreadDied);
      expect(d.alive()).toBe(0);
      // The real decoder, here: `{}` is not a batch.
      await expect(d.decode('fb.obs.gw', bytes, window)).resolves.toMatchObject({ ok: false });
    } finally {
      await d.close();
    }
  });
});
