import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toObservation } from '../readings.js';
import { deliveryHash } from '../sources/mqtt-delivery.js';
import { PAGE_SIZE } from './schema.js';
import { SqliteOutbox } from './sqlite-outbox.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-upgrade-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const path = () => join(dir, 'buf.sqlite');
const open = () =>
  new SqliteOutbox({
    path: path(),
    capacityBytes: 256 * 1024 * 1024,
    policy: 'block',
    commitWindowMs: 0,
    synchronous: 'FULL',
    keepRejects: 10,
  });

const text = (i: number) =>
  JSON.stringify(
    toObservation(
      { source: 'mqtt', edge: 'gw', station: `s${i % 7}` },
      { variable: 'v', value: i, unit: '1' },
      1_765_000_000_000 + i,
    ),
  );

/**
 * A buffer file as the previous release left it: 4 KiB pages, readings stored as their whole JSON
 * text (no id or form column), and a remembered MQTT delivery.
 */
function previousReleaseFile(rows: number, delivery: { hash: Buffer }): string[] {
  const db = new Database(path());
  db.pragma('page_size = 4096');
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, obs TEXT NOT NULL, bytes INTEGER NOT NULL,
      received_ms INTEGER NOT NULL, mono_ms INTEGER, boot_id TEXT);
    CREATE TABLE mqtt_deliveries (client_id TEXT NOT NULL, packet_id INTEGER NOT NULL, hash BLOB NOT NULL,
      n INTEGER NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY (client_id, packet_id)) WITHOUT ROWID;
  `);
  const insert = db.prepare('INSERT INTO outbox (obs, bytes, received_ms) VALUES (?, ?, ?)');
  const texts: string[] = [];
  db.transaction(() => {
    for (let i = 0; i < rows; i++) {
      const t = text(i);
      texts.push(t);
      insert.run(t, t.length + 32, 1_765_000_000_000 + i);
    }
    db.prepare('INSERT INTO mqtt_deliveries VALUES (?, ?, ?, ?, ?)').run(
      'sensor-1',
      7,
      delivery.hash,
      1,
      Date.now(),
    );
  })();
  db.close();
  return texts;
}

const pageSize = () => {
  const db = new Database(path(), { readonly: true });
  try {
    return db.pragma('page_size', { simple: true });
  } finally {
    db.close();
  }
};

/** Everything the buffer hands out, batch by batch, acknowledged as it goes. */
function drain(box: SqliteOutbox): string[] {
  const out: string[] = [];
  for (let b = box.take(500, 1 << 20); b; b = box.take(500, 1 << 20)) {
    out.push(...b.rows);
    box.ack(b.first, b.last);
  }
  return out;
}

describe('a buffer file from the previous release', () => {
  it('keeps every unsent reading, exactly, and new readings after them; its re-deliveries are still recognised', async () => {
    const payload = Buffer.from('{"t":1}');
    const hash = deliveryHash('a/b', payload);
    const old = previousReleaseFile(300, { hash });
    const box = open();
    expect(pageSize()).toBe(PAGE_SIZE);
    expect(box.stats().depth).toBe(300);
    const fresh = [text(1000), text(1001)];
    await box.append(fresh.map((t) => JSON.parse(t)));
    // The message remembered by the previous release, delivered again.
    expect(
      await box.appendOnce([JSON.parse(text(2000))], {
        clientId: 'sensor-1',
        packetId: 7,
        hash,
        mayBeResend: true,
      }),
    ).toBe('duplicate');
    expect(drain(box)).toEqual([...old, ...fresh]);
    await box.close();
  });

  it('a large backlog keeps its page size, and all of it, until a start after it drained', async () => {
    const old = previousReleaseFile(20_000, { hash: Buffer.alloc(16) });
    let box = open();
    expect(pageSize()).toBe(4096);
    await box.append([JSON.parse(text(99))]);
    expect(drain(box)).toEqual([...old, text(99)]);
    await box.close();
    box = open();
    expect(pageSize()).toBe(PAGE_SIZE);
    expect(box.stats().depth).toBe(0);
    await box.close();
  });

  it('opens, with its page size unchanged, while another connection holds it', async () => {
    const old = previousReleaseFile(10, { hash: Buffer.alloc(16) });
    const reader = new Database(path());
    reader.prepare('BEGIN').run();
    reader.prepare('SELECT COUNT(*) FROM outbox').get();
    try {
      const box = open();
      expect(box.stats().depth).toBe(10);
      expect(drain(box)).toEqual(old);
      await box.close();
      expect(pageSize()).toBe(4096);
    } finally {
      reader.prepare('COMMIT').run();
      reader.close();
    }
  });
});
