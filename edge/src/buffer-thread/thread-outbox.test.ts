import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import type { Observation } from '@fieldbeam/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RejectEntry } from '../outbox/outbox.js';
import { toObservation } from '../readings.js';
import type { BufferReport, FromBufferThread, ToBufferThread } from './messages.js';
import { ThreadOutbox } from './thread-outbox.js';

const obs = (i: number): Observation =>
  toObservation(
    { source: 'mqtt', edge: 'gw', station: 's' },
    { variable: 'v', value: i, unit: '1', timeMs: 1_700_000_000_000 + i },
    1,
  );

const report: BufferReport = {
  stats: {
    depth: 0,
    bytes: 0,
    capacityBytes: 1024,
    oldestReceivedMs: null,
    dropped: 0,
    quarantined: 0,
    appended: 0,
    acked: 0,
  },
  duplicates: 0,
  retainedRepeats: 0,
};

/** Stands in for the buffer thread: records the groups posted to it; `commit` answers them. */
class FakeThread extends EventEmitter {
  groups: number[][] = [];
  rejects: RejectEntry[] = [];
  postMessage(m: ToBufferThread): void {
    if (m.t !== 'appends') return;
    for (const r of m.group.rejects) this.rejects.push(r.entry);
    const ids: number[] = [];
    for (let n = 0; n < m.group.nums.length; ) {
      ids.push(m.group.nums[n] as number);
      n += 6 + 4 * (m.group.nums[n + 1] as number);
    }
    this.groups.push(ids);
  }
  commit(ids: number[]): void {
    const m: FromBufferThread = {
      t: 'settled',
      ids: Float64Array.from(ids),
      outcomes: new Uint8Array(ids.length),
      errors: [],
      report,
    };
    this.emit('message', m);
  }
}

describe('hand-off to the buffer thread (the group commit of the threaded agent)', () => {
  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'performance'],
    });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const start = (windowMs: number, rejectPayloadBytes?: number) => {
    const thread = new FakeThread();
    const handlers = { outbox: {}, uplink: {}, onFatal: () => {} } as never;
    const outbox = new ThreadOutbox(
      thread as unknown as Worker,
      'b',
      0,
      report,
      handlers,
      windowMs,
      rejectPayloadBytes,
    );
    return { thread, outbox };
  };

  it("hands over only the bytes of a reject's payload the log keeps, with its size as received", async () => {
    const { thread, outbox } = start(0, 4096);
    // A view of a larger buffer, as a payload cut from a socket read is.
    const socketRead = Buffer.alloc(300 * 1024, 0x7b);
    const payload = socketRead.subarray(1024, 1024 + 200 * 1024);
    void outbox.recordReject({ source: 'mqtt', topic: 't/x', reason: 'not JSON', payload });
    await vi.advanceTimersByTimeAsync(0);
    expect(thread.rejects).toHaveLength(1);
    const sent = thread.rejects[0] as RejectEntry;
    expect(sent.payload.byteLength).toBe(4096);
    expect(sent.payload.buffer.byteLength).toBe(4096);
    expect(sent.payloadLength).toBe(200 * 1024);
  });

  it('sends a reading after a quiet spell at once, and what came during its commit one window after it, not a window after the commit', async () => {
    const { thread, outbox } = start(100);
    const a = outbox.append([obs(1)]);
    await vi.advanceTimersByTimeAsync(0);
    expect(thread.groups).toEqual([[1]]);
    // Two readings while the first is being committed: they wait for that commit.
    const b = outbox.append([obs(2)]);
    const c = outbox.append([obs(3)]);
    await vi.advanceTimersByTimeAsync(1);
    expect(thread.groups).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(9);
    thread.commit([1]);
    await a;
    // The commit took 10 ms: they go 100 ms after the first group, not 100 ms after the commit.
    await vi.advanceTimersByTimeAsync(89);
    expect(thread.groups).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(thread.groups).toEqual([[1], [2, 3]]);
    thread.commit([2, 3]);
    await Promise.all([b, c]);
  });

  it('under load (commits as long as the window) sends what gathered as soon as the commit is reported', async () => {
    const { thread, outbox } = start(1);
    void outbox.append([obs(1)]);
    await vi.advanceTimersByTimeAsync(0);
    void outbox.append([obs(2)]);
    await vi.advanceTimersByTimeAsync(1);
    expect(thread.groups).toEqual([[1]]);
    thread.commit([1]);
    await vi.advanceTimersByTimeAsync(0);
    expect(thread.groups).toEqual([[1], [2]]);
  });

  it('hands a group over after a bound when the commit before it is not reported (appends held back by block)', async () => {
    const { thread, outbox } = start(0);
    void outbox.append([obs(1)]);
    await vi.advanceTimersByTimeAsync(0);
    void outbox.append([obs(2)]);
    await vi.advanceTimersByTimeAsync(1);
    expect(thread.groups).toEqual([[1]]);
    await vi.advanceTimersByTimeAsync(1);
    expect(thread.groups).toEqual([[1], [2]]);
  });
});
