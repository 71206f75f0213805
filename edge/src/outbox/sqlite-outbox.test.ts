import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Observation } from '@fieldbeam/protocol';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { toObservation } from '../readings.js';
import { deliveryHash } from '../sources/mqtt-delivery.js';
import { batchObservations, type MqttDelivery, type RetainedState } from './outbox.js';
import { SqliteOutbox, type SqliteOutboxOptions } from './sqlite-outbox.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-outbox-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const obs = (i: number): Observation =>
  toObservation(
    { source: 'mqtt', edge: 'gw', station: 's' },
    { variable: 'v', value: i, unit: '1', timeMs: 1_700_000_000_000 + i },
    1,
  );

const open = (o: Partial<SqliteOutboxOptions> = {}) =>
  new SqliteOutbox({
    path: join(dir, 'buf.sqlite'),
    capacityBytes: 1024 * 1024,
    policy: 'block',
    commitWindowMs: 1,
    synchronous: 'FULL',
    keepRejects: 10,
    // The capacities below are worked out for readings alone; the reject tests set their share.
    rejectShare: 0,
    ...o,
  });

describe('SqliteOutbox', () => {
  it('keeps rows across a reopen until they are acked, and never reuses a sequence number', async () => {
    let box = open();
    await box.append([obs(1), obs(2), obs(3)]);
    const id = box.bufferId;
    const b = box.take(2, 1e6);
    expect(b?.first).toBe(1);
    expect(b?.last).toBe(2);
    expect(batchObservations(b).map((o) => o.value)).toEqual([1, 2]);
    await box.close();

    box = open();
    expect(box.bufferId).toBe(id);
    expect(box.stats().depth).toBe(3);
    const all = box.take(10, 1e6);
    expect(batchObservations(all).map((o) => o.value)).toEqual([1, 2, 3]);
    box.ack(1, 3);
    expect(box.stats()).toMatchObject({ depth: 0, bytes: 0 });
    await box.append([obs(4)]);
    // AUTOINCREMENT: after draining empty, the next row does not start over at 1.
    expect(box.take(10, 1e6)?.first).toBe(4);
    await box.close();
  });

  it('take continues after taken rows; after a reopen it starts again from the oldest unacked', async () => {
    let box = open();
    await box.append([obs(1), obs(2), obs(3)]);
    expect(box.take(1, 1e6)?.first).toBe(1);
    expect(box.take(1, 1e6)?.first).toBe(2);
    await box.close();
    box = open();
    expect(batchObservations(box.take(5, 1e6))).toHaveLength(3);
    await box.close();
  });

  it('bounds a batch by bytes but always takes at least one row', async () => {
    const box = open();
    await box.append([obs(1), obs(2), obs(3)]);
    const one = box.take(10, 10);
    expect(batchObservations(one)).toHaveLength(1);
    await box.close();
  });

  it('drop_oldest drops exactly what it counts, never rows in flight', async () => {
    const size = JSON.stringify(obs(1)).length + 32;
    const box = open({ policy: 'drop_oldest', capacityBytes: size * 5 + 10 });
    await box.append([1, 2, 3, 4, 5].map(obs));
    box.take(1, 1e6); // row 1 is in flight
    await box.append([obs(6), obs(7)]);
    const s = box.stats();
    expect(s.dropped).toBe(2);
    expect(s.depth).toBe(5);
    // At most about half the capacity is handed out at once (row 1 is out, room for one more).
    expect(batchObservations(box.take(10, 1e6)).map((o) => o.value)).toEqual([4]);
    await box.close();
    const reopened = open({ policy: 'drop_oldest', capacityBytes: size * 5 + 10 });
    const values: unknown[] = [];
    for (let b = reopened.take(10, 1e6); b; b = reopened.take(10, 1e6)) {
      values.push(...batchObservations(b).map((o) => o.value));
      reopened.ack(b.first, b.last);
    }
    expect(values).toEqual([1, 4, 5, 6, 7]);
    expect(reopened.stats().dropped).toBe(2);
    await reopened.close();
  });

  it('block holds appends while full and admits them in order once acked', async () => {
    const size = JSON.stringify(obs(1)).length + 32;
    const box = open({ capacityBytes: size * 2 + 10 });
    await box.append([obs(1), obs(2)]);
    let admitted = false;
    const waiting = box.append([obs(3)]).then(() => {
      admitted = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(admitted).toBe(false);
    const b = box.take(1, 1e6);
    box.ack(b?.first ?? 0, b?.last ?? 0);
    await waiting;
    expect(admitted).toBe(true);
    expect(box.stats().dropped).toBe(0);
    await box.close();
  });

  it('appendOrRefuse refuses at once where block would wait, stores none of it, and takes it once acked', async () => {
    const size = JSON.stringify(obs(1)).length + 32;
    const box = open({ capacityBytes: size * 2 + 10 });
    await box.appendOrRefuse([obs(1), obs(2)]);
    await expect(box.appendOrRefuse([obs(3)])).rejects.toMatchObject({ code: 'FB_EDGE_BUFFER_FULL' });
    // Behind an append that waits, it is refused too: order is kept.
    const waiting = box.append([obs(4)]);
    await new Promise((r) => setTimeout(r, 20));
    await expect(box.appendOrRefuse([obs(5)])).rejects.toMatchObject({ code: 'FB_EDGE_BUFFER_FULL' });
    expect(box.stats().depth).toBe(2);
    const drain = () => {
      const values: unknown[] = [];
      for (let b = box.take(10, 1e6); b; b = box.take(10, 1e6)) {
        values.push(...batchObservations(b).map((o) => o.value));
        box.ack(b.first, b.last);
      }
      return values;
    };
    expect(drain()).toEqual([1, 2]);
    await waiting;
    expect(drain()).toEqual([4]);
    await box.appendOrRefuse([obs(3)]);
    expect(drain()).toEqual([3]);
    await box.close();
  });
});

describe('SqliteOutbox rejects', () => {
  const reject = (i: number, payload: Uint8Array = Buffer.from('x')) => ({
    source: 'mqtt',
    topic: `t/${i}`,
    reason: 'bad',
    payload,
  });

  it('keeps a bounded list of rejects for inspection', async () => {
    const dropped: [number, string][] = [];
    const box = open({ keepRejects: 3, rejectShare: 0.05, onRejectsDropped: (n, l) => dropped.push([n, l]) });
    await Promise.all([0, 1, 2, 3, 4].map((i) => box.recordReject(reject(i))));
    const rows = await box.listRejects(10);
    expect(rows.map((r) => r.topic)).toEqual(['t/4', 't/3', 't/2']);
    expect(dropped.reduce((s, [n]) => s + n, 0)).toBe(2);
    expect(dropped.every(([, limit]) => limit === 'count')).toBe(true);
    await box.close();
  });

  it('keeps the first bytes of a payload and records its length', async () => {
    const box = open({ rejectShare: 0.05, rejectPayloadBytes: 100 });
    const garbage = Buffer.alloc(200 * 1024, 0x41);
    await box.recordReject({ ...reject(1, garbage), topic: 't/'.repeat(5000) });
    const [row] = await box.listRejects(1);
    expect(row?.payload).toEqual(garbage.subarray(0, 100));
    expect(row?.payload_bytes).toBe(200 * 1024);
    // Topics (up to 64 KiB in MQTT) are cut too.
    expect(row?.topic.length).toBeLessThanOrEqual(1025);
    await box.close();
  });

  it('never holds more than its share of the capacity, which readings cannot use', async () => {
    const capacityBytes = 1024 * 1024;
    const dropped: Record<string, number> = {};
    const box = open({
      capacityBytes,
      rejectShare: 0.05,
      keepRejects: 100_000,
      onRejectsDropped: (n, limit) => {
        dropped[limit] = (dropped[limit] ?? 0) + n;
      },
    });
    const garbage = Buffer.alloc(200 * 1024, 0x42);
    for (let round = 0; round < 20; round++)
      await Promise.all(
        Array.from({ length: 25 }, (_, i) => box.recordReject(reject(round * 25 + i, garbage))),
      );
    const db = new Database(join(dir, 'buf.sqlite'), { readonly: true });
    const kept = db
      .prepare(
        'SELECT COUNT(*) AS n, SUM(length(payload) + length(topic) + length(reason)) AS b FROM rejects',
      )
      .get() as { n: number; b: number };
    db.close();
    expect(kept.b).toBeLessThanOrEqual(capacityBytes * 0.05);
    expect(kept.n).toBeGreaterThan(0);
    expect(dropped.bytes).toBe(500 - kept.n);
    // The newest are the ones kept.
    expect((await box.listRejects(1))[0]?.topic).toBe('t/499');
    expect(box.stats().capacityBytes).toBe(capacityBytes - Math.floor(capacityBytes * 0.05));
    await box.close();
  });

  it('rejects share the readings’ group commit; alone they are committed without a sync', async () => {
    const commits: { readings: number; rejects: number; synced: boolean }[] = [];
    const box = open({ rejectShare: 0.05, commitWindowMs: 50, onCommit: (c) => commits.push(c) });
    await box.append([obs(0)]);
    commits.length = 0;
    // Inside one commit window: 3 appends and 4 rejects, interleaved.
    await Promise.all([
      box.append([obs(1)]),
      box.recordReject(reject(1)),
      box.recordReject(reject(2)),
      box.append([obs(2), obs(3)]),
      box.recordReject(reject(3)),
      box.append([obs(4)]),
      box.recordReject(reject(4)),
    ]);
    expect(commits).toEqual([{ readings: 4, rejects: 4, synced: true }]);
    commits.length = 0;
    await new Promise((r) => setTimeout(r, 60));
    await Promise.all([box.recordReject(reject(5)), box.recordReject(reject(6))]);
    expect(commits).toEqual([{ readings: 0, rejects: 2, synced: false }]);
    expect(await box.listRejects(10)).toHaveLength(6);
    await box.close();
  });

  it('still keeps rejects while readings wait for room under block', async () => {
    const size = JSON.stringify(obs(1)).length + 32;
    // Room for one reading; the other half is the rejects'.
    const box = open({ capacityBytes: 2 * (size + 10), rejectShare: 0.5 });
    await box.append([obs(1)]);
    const waiting = box.append([obs(2)]);
    await box.recordReject(reject(1));
    expect(await box.listRejects(10)).toHaveLength(1);
    const b = box.take(1, 1e6);
    box.ack(b?.first ?? 0, b?.last ?? 0);
    await waiting;
    await box.close();
  });

  it('a file from before rejects were bounded is trimmed to its share at open', async () => {
    const path = join(dir, 'buf.sqlite');
    let box = open();
    await box.close();
    const db = new Database(path);
    db.exec('DROP TABLE rejects');
    db.exec(
      'CREATE TABLE rejects (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, source TEXT NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL, payload BLOB)',
    );
    const insert = db.prepare(
      'INSERT INTO rejects (at_ms, source, topic, reason, payload) VALUES (?, ?, ?, ?, ?)',
    );
    for (let i = 0; i < 10; i++) insert.run(i, 'mqtt', `old/${i}`, 'bad', Buffer.alloc(20_000, 0x43));
    db.close();
    box = open({ capacityBytes: 1024 * 1024, rejectShare: 0.05 });
    // 52 KB of share: the two newest whole 20 KB payloads fit.
    expect((await box.listRejects(100)).map((r) => [r.topic, r.payload_bytes])).toEqual([
      ['old/9', 20_000],
      ['old/8', 20_000],
    ]);
    await box.recordReject(reject(1));
    expect((await box.listRejects(1))[0]?.topic).toBe('t/1');
    await box.close();
  });
});

describe('SqliteOutbox file modes', () => {
  const mode = (p: string) => statSync(p).mode & 0o777;

  it('creates its folder 0700 and the database, -wal and -shm files 0600', async () => {
    const path = join(dir, 'nested', 'buf.sqlite');
    const box = new SqliteOutbox({
      path,
      capacityBytes: 1e6,
      policy: 'block',
      commitWindowMs: 1,
      synchronous: 'FULL',
      keepRejects: 10,
    });
    await box.append([obs(1)]);
    await box.recordReject({ source: 'mqtt', topic: 't', reason: 'bad', payload: Buffer.from('secret') });
    expect(mode(join(dir, 'nested'))).toBe(0o700);
    for (const suffix of ['', '-wal', '-shm']) expect([suffix, mode(path + suffix)]).toEqual([suffix, 0o600]);
    await box.close();
  });

  it('narrows a world-readable file left by an earlier version', async () => {
    const path = join(dir, 'buf.sqlite');
    let box = open();
    await box.append([obs(1)]);
    await box.close();
    for (const suffix of ['', '-wal', '-shm']) if (existsSync(path + suffix)) chmodSync(path + suffix, 0o644);
    box = open();
    await box.append([obs(2)]);
    for (const suffix of ['', '-wal', '-shm']) expect([suffix, mode(path + suffix)]).toEqual([suffix, 0o600]);
    await box.close();
  });
});

describe('SqliteOutbox on a damaged file', () => {
  it('moves a file that is not a database aside and starts fresh', async () => {
    const path = join(dir, 'buf.sqlite');
    writeFileSync(path, 'this is not an SQLite database, just bytes on a bad SD card'.repeat(100));
    const moved: string[] = [];
    const box = open({ onCorruptFile: (to) => moved.push(to) });
    expect(moved).toHaveLength(1);
    expect(existsSync(moved[0] as string)).toBe(true);
    await box.append([obs(1)]);
    expect(box.stats().depth).toBe(1);
    await box.close();
  });

  it('detects a truncated file', async () => {
    let box = open();
    await box.append(Array.from({ length: 2000 }, (_, i) => obs(i)));
    await box.close();
    const path = join(dir, 'buf.sqlite');
    truncateSync(path, Math.floor(statSync(path).size / 2));
    const moved: string[] = [];
    box = open({ onCorruptFile: (to) => moved.push(to) });
    expect(moved).toHaveLength(1);
    expect(box.stats().depth).toBe(0);
    await box.close();
  });
});

describe('SqliteOutbox clock re-stamping', () => {
  it('moves receipt-time readings taken before the clock synced, with new ids, and leaves sensor times alone', async () => {
    const box = open();
    // The wall clock believed it was 1970 when these arrived.
    const wrong = 5_000;
    const unsynced = toObservation(
      { source: 'mqtt', edge: 'gw', station: 's' },
      { variable: 'v', value: 1, unit: '1', quality: ['clock_unsynced'] },
      wrong,
    );
    const sensorTimed = toObservation(
      { source: 'mqtt', edge: 'gw', station: 's' },
      { variable: 'v', value: 2, unit: '1', timeMs: 1_700_000_000_000 },
      wrong,
    );
    await box.append([unsynced, sensorTimed]);
    const syncedNow = Date.now();
    expect(await box.restampUnsynced(syncedNow)).toBe(1);
    const batch = box.take(10, 1e6);
    const [a, b] = batchObservations(batch);
    // Stamped from the monotonic clock: within moments of the true time, not 1970.
    expect(Math.abs(Date.parse(a?.time ?? '') - syncedNow)).toBeLessThan(5_000);
    expect(a?.quality).toEqual(['clock_restamped', 'edge_time']);
    expect(a?.id).not.toBe(unsynced.id);
    expect(b).toEqual(sensorTimed);
    expect(await box.restampUnsynced()).toBe(0);
    await box.close();
  });
});

describe('SqliteOutbox MQTT deliveries', () => {
  const delivery = (packetId: number, content: string, mayBeResend = true): MqttDelivery => ({
    clientId: 'sensor-1',
    packetId,
    hash: createHash('sha256').update(content).digest().subarray(0, 16),
    mayBeResend,
  });
  const values = (box: SqliteOutbox) => batchObservations(box.take(100, 1e6)).map((o) => o.value);

  it('a re-delivery of a committed message is answered as duplicate and not stored, also after a reopen', async () => {
    let box = open();
    expect(await box.appendOnce([obs(1)], delivery(7, 'a'))).toBe('stored');
    expect(await box.appendOnce([obs(2)], delivery(7, 'a'))).toBe('duplicate');
    await box.close();
    box = open();
    // What the sensor sends again after a kill -9 carries a new receipt time, hence another id.
    expect(await box.appendOnce([obs(3)], delivery(7, 'a'))).toBe('duplicate');
    expect(box.duplicateDeliveries).toBe(1);
    expect(values(box)).toEqual([1]);
    await box.close();
  });

  it('stores a new message that reuses a packet id: not a possible resend, other content, or too far back', async () => {
    const box = open({ resendWindow: 2 });
    await box.appendOnce([obs(1)], delivery(1, 'a'));
    // Same id and content, but the id came back on the same connection without DUP: a new message.
    expect(await box.appendOnce([obs(2)], delivery(1, 'a', false))).toBe('stored');
    expect(await box.appendOnce([obs(3)], delivery(1, 'b'))).toBe('stored');
    await box.appendOnce([obs(4)], delivery(2, 'c'));
    await box.appendOnce([obs(5)], delivery(3, 'd'));
    // Packet 1 ('b') is now third from last: outside the window of 2.
    expect(await box.appendOnce([obs(6)], delivery(1, 'b'))).toBe('stored');
    // Packet 3 is the latest but one: inside it.
    expect(await box.appendOnce([obs(7)], delivery(3, 'd'))).toBe('duplicate');
    // Another client's packet 3 is its own.
    expect(await box.appendOnce([obs(8)], { ...delivery(3, 'd'), clientId: 'sensor-2' })).toBe('stored');
    expect(values(box)).toEqual([1, 2, 3, 4, 5, 6, 8]);
    await box.close();
  });

  it('a re-delivery queued behind its original in the same commit is stored once', async () => {
    const box = open();
    const outcomes = await Promise.all([
      box.appendOnce([obs(1)], delivery(9, 'a')),
      box.appendOnce([obs(2)], delivery(9, 'a')),
    ]);
    expect(outcomes).toEqual(['stored', 'duplicate']);
    expect(values(box)).toEqual([1]);
    await box.close();
  });

  it('a re-delivery of a message still waiting for room is not answered before the original is committed', async () => {
    const size = JSON.stringify(obs(1)).length + 32;
    const box = open({ capacityBytes: size + 10 });
    await box.append([obs(1)]);
    const original = box.appendOnce([obs(2)], delivery(5, 'x'));
    const settled: string[] = [];
    const resend = box.appendOnce([obs(3)], delivery(5, 'x')).then((r) => {
      settled.push(r);
      return r;
    });
    await new Promise((r) => setTimeout(r, 20));
    // Acknowledging it now would lose it if the agent died before the original got its room.
    expect(settled).toEqual([]);
    const b = box.take(1, 1e6);
    box.ack(b?.first ?? 0, b?.last ?? 0);
    expect(await original).toBe('stored');
    expect(await resend).toBe('duplicate');
    expect(values(box)).toEqual([2]);
    await box.close();
  });

  it('opens a buffer file written before deliveries were remembered', async () => {
    let box = open();
    await box.append([obs(1)]);
    await box.close();
    const db = new Database(join(dir, 'buf.sqlite'));
    db.exec('DROP TABLE mqtt_deliveries');
    db.close();
    box = open();
    expect(await box.appendOnce([obs(2)], delivery(1, 'a'))).toBe('stored');
    expect(await box.appendOnce([obs(3)], delivery(1, 'a'))).toBe('duplicate');
    expect(values(box)).toEqual([1, 2]);
    await box.close();
  });

  it('forgets deliveries by age and beyond the window', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const t0 = Date.parse('2030-01-01T00:00:00Z');
      vi.setSystemTime(t0);
      const box = open({ resendWindow: 2, deliveryMaxAgeMs: 3600_000 });
      await box.appendOnce([obs(1)], { ...delivery(1, 'other'), clientId: 'sensor-2' });
      vi.setSystemTime(t0 + 50 * 60_000);
      for (let id = 1; id <= 5; id++) await box.appendOnce([obs(id + 1)], delivery(id, `m${id}`));
      // An hour after the last pruning, the next commit prunes: sensor-2's delivery is 70 min old.
      vi.setSystemTime(t0 + 70 * 60_000);
      await box.appendOnce([obs(7)], delivery(6, 'm6'));
      const db = new Database(join(dir, 'buf.sqlite'), { readonly: true });
      const rows = db
        .prepare('SELECT client_id, packet_id FROM mqtt_deliveries ORDER BY client_id, packet_id')
        .all();
      db.close();
      // sensor-2 is gone by age; of sensor-1, the latest two (6 committed with the prune, 5) remain.
      expect(rows).toEqual([
        { client_id: 'sensor-1', packet_id: 5 },
        { client_id: 'sensor-1', packet_id: 6 },
      ]);
      await box.close();
    } finally {
      vi.useRealTimers();
    }
  });
});

/** A receipt-time reading: each delivery of the same payload would be a new reading with a new id. */
const reading = (value: number): Observation =>
  toObservation(
    { source: 'mqtt', edge: 'gw', station: 'kitchen' },
    { variable: 'v', value, unit: '1' },
    Date.now(),
  );

const msg = (topic: string, payload: string, replayed: boolean): RetainedState => ({
  topic,
  payloadHash: deliveryHash(topic, Buffer.from(payload)),
  replayed,
});

describe('SqliteOutbox retained replays', () => {
  const values = (box: SqliteOutbox) => batchObservations(box.take(100, 1e6)).map((o) => o.value);

  it('a replay of the payload last stored from its topic is not stored again, also after reopening', async () => {
    let box = open();
    expect(await box.appendOnce([reading(20.5)], undefined, msg('home/k/t', '20.5', true))).toBe('stored');
    expect(await box.appendOnce([reading(20.5)], undefined, msg('home/k/t', '20.5', true))).toBe(
      'retained_repeat',
    );
    await box.close();
    for (let restart = 0; restart < 2; restart++) {
      box = open();
      expect(await box.appendOnce([reading(20.5)], undefined, msg('home/k/t', '20.5', true))).toBe(
        'retained_repeat',
      );
      expect(box.retainedRepeatDeliveries).toBe(1);
      await box.close();
    }
    box = open();
    expect(values(box)).toEqual([20.5]);
    // A new retained value is stored, once.
    expect(await box.appendOnce([reading(21)], undefined, msg('home/k/t', '21', true))).toBe('stored');
    expect(await box.appendOnce([reading(21)], undefined, msg('home/k/t', '21', true))).toBe(
      'retained_repeat',
    );
    expect(values(box)).toEqual([21]);
    await box.close();
  });

  it('the payload stored from a live or queued message (RETAIN cleared) is what its replay repeats', async () => {
    const box = open();
    expect(await box.appendOnce([reading(1)], undefined, msg('a', '1', false))).toBe('stored');
    expect(await box.appendOnce([reading(1)], undefined, msg('a', '1', true))).toBe('retained_repeat');
    // Live messages are readings, whatever they repeat.
    expect(await box.appendOnce([reading(1)], undefined, msg('a', '1', false))).toBe('stored');
    // Another topic with the same payload is its own.
    expect(await box.appendOnce([reading(1)], undefined, msg('b', '1', true))).toBe('stored');
    // Replays of a payload the topic no longer has last are stored.
    await box.appendOnce([reading(2)], undefined, msg('a', '2', false));
    expect(await box.appendOnce([reading(1)], undefined, msg('a', '1', true))).toBe('stored');
    expect(values(box)).toEqual([1, 1, 1, 2, 1]);
    await box.close();
  });

  it('a replay committed together with the message it repeats is recognised', async () => {
    const box = open({ commitWindowMs: 50 });
    await box.appendOnce([reading(0)]);
    const both = await Promise.all([
      box.appendOnce([reading(5)], undefined, msg('c', '5', false)),
      box.appendOnce([reading(5)], undefined, msg('c', '5', true)),
    ]);
    expect(both).toEqual(['stored', 'retained_repeat']);
    await box.close();
  });

  it('readings without a retained state (the embedded broker, other sources) are not affected', async () => {
    const box = open();
    await box.appendOnce([reading(3)], undefined, msg('d', '3', false));
    expect(await box.appendOnce([reading(3)])).toBe('stored');
    await box.append([reading(3)]);
    expect(values(box)).toEqual([3, 3, 3]);
    await box.close();
  });

  it('remembers at most retainedMaxTopics topics: the least recently updated tenth are forgotten at once', async () => {
    const forgotten: number[] = [];
    let box = open({ retainedMaxTopics: 20, onRetainedTopicsForgotten: (n) => forgotten.push(n) });
    for (let i = 0; i < 21; i++) await box.appendOnce([reading(i)], undefined, msg(`t/${i}`, `${i}`, true));
    expect(forgotten).toEqual([3]);
    await box.close();
    box = open({ retainedMaxTopics: 20 });
    // The oldest three were forgotten: their replays are stored again; the rest are remembered.
    for (let i = 20; i >= 3; i--)
      expect(await box.appendOnce([reading(i)], undefined, msg(`t/${i}`, `${i}`, true))).toBe(
        'retained_repeat',
      );
    for (let i = 0; i < 3; i++)
      expect(await box.appendOnce([reading(i)], undefined, msg(`t/${i}`, `${i}`, true))).toBe('stored');
    await box.close();
  });
});

describe('SqliteOutbox: the buffer account the collector proves completeness with', () => {
  const size = JSON.stringify(obs(1)).length + 32;
  const dropBox = () => open({ policy: 'drop_oldest', capacityBytes: size * 5 + 10 });

  it('a new file starts its sequence space at 1; an older file at the next number it hands out', async () => {
    let box = open();
    expect(box.bufferStart).toBe(1);
    await box.append([obs(1), obs(2)]);
    await box.close();
    box = open();
    expect(box.bufferStart).toBe(1);
    await box.close();
    // A file written before the account existed: no seq_start in its meta.
    const db = new Database(join(dir, 'buf.sqlite'));
    db.prepare("DELETE FROM meta WHERE key = 'seq_start'").run();
    db.close();
    box = open();
    expect(box.bufferStart).toBe(3);
    await box.append([obs(3)]);
    expect(box.take(10, 1e6)).toMatchObject({ first: 1, last: 3 });
    await box.close();
    expect(open().bufferStart).toBe(3);
  });

  it('drop_oldest records the exact ranges it dropped; the next batch carries them until it is acked', async () => {
    const box = dropBox();
    await box.append([1, 2, 3, 4, 5].map(obs));
    const inFlight = box.take(1, 1e6); // row 1 is spared
    await box.append([obs(6), obs(7)]); // drops 2 and 3
    await box.append([obs(8)]); // drops 4: extends the same range
    const b = box.take(1, 1e6);
    expect(b).toMatchObject({ first: 5, last: 5, dropped: [[2, 4]] });
    // Carried ranges are not carried twice, nor extended while on their way.
    await box.append([obs(9)]); // drops 6 (5 is taken)
    const c = box.take(1, 1e6);
    expect(c).toMatchObject({ first: 7, dropped: [[6, 6]] });
    if (!inFlight || !b || !c) throw new Error('no batch');
    box.ack(b.first, b.last);
    await box.append([obs(10)]); // a commit forgets the acked batch's ranges
    await box.close();
    // Reopened, the unacknowledged batch's range goes with the next batch again; the acked one is gone.
    const reopened = dropBox();
    const values: unknown[] = [];
    const carried: unknown[] = [];
    for (let next = reopened.take(10, 1e6); next; next = reopened.take(10, 1e6)) {
      values.push(...batchObservations(next).map((o) => o.value));
      carried.push(...(next.dropped ?? []));
      reopened.ack(next.first, next.last);
    }
    expect(values).toEqual([1, 7, 8, 9, 10]);
    expect(carried).toEqual([[6, 6]]);
    expect(reopened.stats().dropped).toBe(4);
    await reopened.append([obs(11)]);
    expect(reopened.take(10, 1e6)?.dropped).toBeUndefined();
    await reopened.close();
  });

  it('counts rejected inputs per buffer file, across a reopen', async () => {
    let box = open({ keepRejects: 0 });
    await box.recordReject({ source: 'mqtt', topic: 't', reason: 'bad', payload: new Uint8Array(1) });
    await box.recordReject({ source: 'mqtt', topic: 't', reason: 'bad', payload: new Uint8Array(1) });
    expect(box.stats().quarantined).toBe(2);
    await box.append([obs(1)]); // persisted with the next commit
    await box.close();
    box = open();
    expect(box.stats().quarantined).toBe(2);
    await box.close();
  });
});

describe('SqliteOutbox WAL checkpoints', () => {
  type Checkpoint = { frames: number; checkpointed: number; idle: boolean };

  it('checkpoints after the commit that crosses the threshold is answered, and keeps the log bounded', async () => {
    const events: string[] = [];
    const checkpoints: Checkpoint[] = [];
    const box = open({
      walCheckpointPages: 64,
      onCheckpoint: (c) => {
        checkpoints.push(c);
        events.push('checkpoint');
      },
    });
    const walPath = join(dir, 'buf.sqlite-wal');
    let largestWal = 0;
    for (let i = 0; i < 400; i++) {
      await box.append([obs(2 * i), obs(2 * i + 1)]).then(() => events.push('stored'));
      largestWal = Math.max(largestWal, statSync(walPath).size);
      // Deletes of acknowledged rows are commits too.
      const b = box.take(10, 1e6);
      if (b) box.ack(b.first, b.last);
    }
    await new Promise((r) => setImmediate(r));
    expect(checkpoints.length).toBeGreaterThan(2);
    // Every frame copied: nothing else reads the file.
    for (const c of checkpoints) expect(c.checkpointed).toBe(c.frames);
    // Bounded near the threshold (64 pages of 2 KiB) where SQLite's own default (1,000 pages) lets it grow to 2 MB.
    expect(largestWal).toBeLessThan(256 * 1024);
    await box.close();
  });

  it('a commit that crosses the threshold answers its appends before the checkpoint runs', async () => {
    const events: string[] = [];
    const box = open({ walCheckpointPages: 1, onCheckpoint: () => events.push('checkpoint') });
    // One commit of five appends: the first commit of the file crosses a threshold of one page.
    await Promise.all([1, 2, 3, 4, 5].map((i) => box.append([obs(i)]).then(() => events.push('stored'))));
    await new Promise((r) => setImmediate(r));
    expect(events).toEqual(['stored', 'stored', 'stored', 'stored', 'stored', 'checkpoint']);
    await box.close();
  });

  it('checkpoints a log left with frames once no commit comes', async () => {
    const checkpoints: Checkpoint[] = [];
    const box = open({ onCheckpoint: (c) => checkpoints.push(c) });
    await box.append([obs(1), obs(2)]);
    expect(checkpoints).toEqual([]);
    await vi.waitFor(() => expect(checkpoints.length).toBe(1), { timeout: 10_000, interval: 100 });
    expect(checkpoints[0]).toMatchObject({ idle: true });
    expect(checkpoints[0]?.frames).toBeGreaterThan(0);
    await box.close();
  });
});

describe('SqliteOutbox WAL checkpoints while a backlog drains', () => {
  it('counts the pages deletes of acknowledged rows write, so a drain under light load keeps the log bounded', async () => {
    const checkpoints: { frames: number }[] = [];
    const box = open({
      capacityBytes: 64 * 1024 * 1024,
      walCheckpointPages: 64,
      onCheckpoint: (c) => checkpoints.push(c),
    });
    const walPath = join(dir, 'buf.sqlite-wal');
    // A backlog of 20,000 readings, written 200 a commit (each checkpointed as it crosses 64 pages).
    for (let i = 0; i < 100; i++) {
      await box.append(Array.from({ length: 200 }, (_, j) => obs(200 * i + j)));
    }
    await new Promise((r) => setImmediate(r));
    const walBefore = statSync(walPath).size;
    // Drained 2,000 a batch while a reading a turn still comes: each batch's delete rides its commit.
    let largestWal = 0;
    for (let i = 0; i < 10; i++) {
      const b = box.take(2000, 1e9);
      if (b) box.ack(b.first, b.last);
      await box.append([obs(100_000 + i)]);
      await new Promise((r) => setImmediate(r));
      largestWal = Math.max(largestWal, statSync(walPath).size);
    }
    expect(box.stats().depth).toBe(10);
    // Each batch's delete dirties about as many pages as its rows filled; the log stays near 64 pages.
    expect(largestWal).toBeLessThan(Math.max(walBefore, 512 * 1024));
    expect(Math.max(...checkpoints.map((c) => c.frames))).toBeLessThan(256);
    await box.close();
  });

  it('a checkpoint that fails leaves the buffer working and is tried again', async () => {
    const failures: string[] = [];
    const checkpoints: number[] = [];
    const box = open({
      walCheckpointPages: 1,
      onCheckpoint: (c) => checkpoints.push(c.checkpointed),
      onCheckpointFailed: (err) => failures.push(err.message),
    });
    const db = (box as unknown as { db: Database.Database }).db;
    const pragma = db.pragma.bind(db);
    // As a full or failing card makes SQLite's copy into the file fail.
    const spy = vi.spyOn(db, 'pragma').mockImplementation(((source: string, o?: Database.PragmaOptions) => {
      if (source.startsWith('wal_checkpoint')) throw new Error('disk I/O error');
      return pragma(source, o);
    }) as typeof db.pragma);
    await box.append([obs(1)]);
    await new Promise((r) => setImmediate(r));
    expect(failures).toEqual(['disk I/O error']);
    spy.mockRestore();
    await box.append([obs(2)]);
    await new Promise((r) => setImmediate(r));
    expect(checkpoints.length).toBe(1);
    expect(checkpoints[0]).toBeGreaterThan(0);
    expect(box.stats().depth).toBe(2);
    await box.close();
  });
});
