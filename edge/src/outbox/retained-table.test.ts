import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Observation } from '@fieldbeam/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toObservation } from '../readings.js';
import { deliveryHash } from '../sources/mqtt-delivery.js';
import { batchObservations, type RetainedState } from './outbox.js';
import { SqliteOutbox, type SqliteOutboxOptions } from './sqlite-outbox.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-retained-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A receipt-time reading: each delivery of the same payload would be a new reading with a new id. */
const obs = (value: number): Observation =>
  toObservation(
    { source: 'mqtt', edge: 'gw', station: 'kitchen' },
    { variable: 'v', value, unit: '1' },
    Date.now(),
  );

const open = (o: Partial<SqliteOutboxOptions> = {}) =>
  new SqliteOutbox({
    path: join(dir, 'buf.sqlite'),
    capacityBytes: 1024 * 1024,
    policy: 'block',
    commitWindowMs: 1,
    synchronous: 'FULL',
    keepRejects: 10,
    ...o,
  });

const msg = (topic: string, payload: string, replayed: boolean): RetainedState => ({
  topic,
  payloadHash: deliveryHash(topic, Buffer.from(payload)),
  replayed,
});

const values = (box: SqliteOutbox) => batchObservations(box.take(100, 1e6)).map((o) => o.value);

describe('SqliteOutbox retained replays', () => {
  it('a replay of the payload last stored from its topic is not stored again, also after reopening', async () => {
    let box = open();
    expect(await box.appendOnce([obs(20.5)], undefined, msg('home/k/t', '20.5', true))).toBe('stored');
    expect(await box.appendOnce([obs(20.5)], undefined, msg('home/k/t', '20.5', true))).toBe(
      'retained_repeat',
    );
    await box.close();
    for (let restart = 0; restart < 2; restart++) {
      box = open();
      expect(await box.appendOnce([obs(20.5)], undefined, msg('home/k/t', '20.5', true))).toBe(
        'retained_repeat',
      );
      expect(box.retainedRepeatDeliveries).toBe(1);
      await box.close();
    }
    box = open();
    expect(values(box)).toEqual([20.5]);
    // A new retained value is stored, once.
    expect(await box.appendOnce([obs(21)], undefined, msg('home/k/t', '21', true))).toBe('stored');
    expect(await box.appendOnce([obs(21)], undefined, msg('home/k/t', '21', true))).toBe('retained_repeat');
    expect(values(box)).toEqual([21]);
    await box.close();
  });

  it('the payload stored from a live or queued message (RETAIN cleared) is what its replay repeats', async () => {
    const box = open();
    expect(await box.appendOnce([obs(1)], undefined, msg('a', '1', false))).toBe('stored');
    expect(await box.appendOnce([obs(1)], undefined, msg('a', '1', true))).toBe('retained_repeat');
    // Live messages are readings, whatever they repeat.
    expect(await box.appendOnce([obs(1)], undefined, msg('a', '1', false))).toBe('stored');
    // Another topic with the same payload is its own.
    expect(await box.appendOnce([obs(1)], undefined, msg('b', '1', true))).toBe('stored');
    // Replays of a payload the topic no longer has last are stored.
    await box.appendOnce([obs(2)], undefined, msg('a', '2', false));
    expect(await box.appendOnce([obs(1)], undefined, msg('a', '1', true))).toBe('stored');
    expect(values(box)).toEqual([1, 1, 1, 2, 1]);
    await box.close();
  });

  it('a replay committed together with the message it repeats is recognised', async () => {
    const box = open({ commitWindowMs: 50 });
    await box.appendOnce([obs(0)]);
    const both = await Promise.all([
      box.appendOnce([obs(5)], undefined, msg('c', '5', false)),
      box.appendOnce([obs(5)], undefined, msg('c', '5', true)),
    ]);
    expect(both).toEqual(['stored', 'retained_repeat']);
    await box.close();
  });

  it('readings without a retained state (the embedded broker, other sources) are not affected', async () => {
    const box = open();
    await box.appendOnce([obs(3)], undefined, msg('d', '3', false));
    expect(await box.appendOnce([obs(3)])).toBe('stored');
    await box.append([obs(3)]);
    expect(values(box)).toEqual([3, 3, 3]);
    await box.close();
  });

  it('remembers at most retainedMaxTopics topics: the least recently updated tenth are forgotten at once', async () => {
    const forgotten: number[] = [];
    let box = open({ retainedMaxTopics: 20, onRetainedTopicsForgotten: (n) => forgotten.push(n) });
    for (let i = 0; i < 21; i++) await box.appendOnce([obs(i)], undefined, msg(`t/${i}`, `${i}`, true));
    expect(forgotten).toEqual([3]);
    await box.close();
    box = open({ retainedMaxTopics: 20 });
    // The oldest three were forgotten: their replays are stored again; the rest are remembered.
    for (let i = 20; i >= 3; i--)
      expect(await box.appendOnce([obs(i)], undefined, msg(`t/${i}`, `${i}`, true))).toBe('retained_repeat');
    for (let i = 0; i < 3; i++)
      expect(await box.appendOnce([obs(i)], undefined, msg(`t/${i}`, `${i}`, true))).toBe('stored');
    await box.close();
  });
});
