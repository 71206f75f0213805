import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toObservation } from '../readings.js';
import { SqliteOutbox } from './sqlite-outbox.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-first-release-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const path = () => join(dir, 'buf.sqlite');

const text = (i: number) =>
  JSON.stringify(
    toObservation(
      { source: 'mqtt', edge: 'gw', station: 's' },
      { variable: 'v', value: i, unit: '1' },
      1_765_000_000_000 + i,
    ),
  );

/** A buffer file as the first release wrote it: no clock columns on readings, rejects kept whole. */
function firstReleaseFile(rows: number): string[] {
  const db = new Database(path());
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, obs TEXT NOT NULL, bytes INTEGER NOT NULL,
      received_ms INTEGER NOT NULL);
    CREATE TABLE rejects (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT NULL, source TEXT NOT NULL,
      topic TEXT NOT NULL, reason TEXT NOT NULL, payload BLOB);
  `);
  const insert = db.prepare('INSERT INTO outbox (obs, bytes, received_ms) VALUES (?, ?, ?)');
  const texts: string[] = [];
  for (let i = 0; i < rows; i++) {
    const t = text(i);
    texts.push(t);
    insert.run(t, t.length + 32, 1_765_000_000_000 + i);
  }
  db.close();
  return texts;
}

describe('a buffer file from the first release', () => {
  it('opens with its unsent readings, which are sent exactly, then new ones', async () => {
    const old = firstReleaseFile(5);
    const moved: string[] = [];
    const box = new SqliteOutbox({
      path: path(),
      capacityBytes: 64 * 1024 * 1024,
      policy: 'block',
      commitWindowMs: 0,
      synchronous: 'FULL',
      keepRejects: 10,
      onCorruptFile: (to) => moved.push(to),
    });
    try {
      expect(moved).toEqual([]);
      expect(box.stats().depth).toBe(5);
      await box.append([JSON.parse(text(99))]);
      const out: string[] = [];
      for (let b = box.take(500, 1 << 20); b; b = box.take(500, 1 << 20)) {
        out.push(...b.rows);
        box.ack(b.first, b.last);
      }
      expect(out).toEqual([...old, text(99)]);
    } finally {
      await box.close();
    }
    expect(readdirSync(dir).filter((f) => f.includes('corrupt'))).toEqual([]);
  });
});
