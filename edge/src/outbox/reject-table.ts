import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { EdgeError, EdgeErrorCode } from '../errors.js';
import type { KeptReject, RejectEntry } from './outbox.js';
import { REJECT_OVERHEAD } from './schema.js';

/** Topics (up to 64 KiB in MQTT) and reasons are kept to this many characters. */
export const REJECT_TEXT_CHARS = 1024;

/** Why kept rejects were discarded: `count` beyond `buffer.keep_rejects`, `bytes` beyond their share. */
export type RejectLimit = 'count' | 'bytes';

export interface RejectTableOptions {
  /** Rows kept at most (`buffer.keep_rejects`). */
  keep: number;
  /** Bytes kept at most: the rejects' share of the buffer capacity. */
  budgetBytes: number;
  /** Payload bytes kept per reject. */
  payloadBytes: number;
  /** Called with the number of kept (or waiting) rejects discarded to stay within a limit. */
  onDropped?: (count: number, limit: RejectLimit) => void;
}

interface PendingReject {
  atMs: number;
  source: string;
  topic: string;
  reason: string;
  payload: Buffer;
  payloadBytes: number;
  bytes: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

const cut = (s: string) => (s.length > REJECT_TEXT_CHARS ? `${s.slice(0, REJECT_TEXT_CHARS)}…` : s);

/**
 * The reject log inside the buffer file. It owns no transaction: `SqliteOutbox` writes what is
 * waiting here inside its group commit (`writePending`) and settles it once that commit is done.
 */
export class RejectTable {
  private pending: PendingReject[] = [];
  private pendingBytes = 0;
  /** Rejects written by the transaction under way, settled when it ends. */
  private writing: PendingReject[] = [];
  /** Rows the transaction under way trimmed, reported once it is committed. */
  private trimmed = { count: 0, bytes: 0 };
  private count = 0;
  private bytes = 0;
  private readonly stmt;

  constructor(
    db: Database.Database,
    private readonly opts: RejectTableOptions,
  ) {
    this.stmt = {
      insert: db.prepare(
        'INSERT INTO rejects (at_ms, source, topic, reason, payload, payload_bytes, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      totals: db.prepare<[], { n: number; b: number }>(
        'SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM rejects',
      ),
      oldest: db.prepare<[], { id: number; bytes: number }>('SELECT id, bytes FROM rejects ORDER BY id'),
      deleteUpTo: db.prepare('DELETE FROM rejects WHERE id <= ?'),
      list: db.prepare<[number], KeptReject>(
        'SELECT id, at_ms, source, topic, reason, payload, payload_bytes FROM rejects ORDER BY id DESC LIMIT ?',
      ),
    };
    this.reload();
    // A file from an earlier version may hold far more than the bounds allow now.
    if (this.count > opts.keep || this.bytes > opts.budgetBytes) {
      db.transaction(() => this.trim())();
      this.reportTrimmed();
    }
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** Takes an entry to be written with the next commit; only its first `payloadBytes` are copied. */
  queue(entry: RejectEntry): Promise<void> {
    // Configured to keep none: nothing is dropped that was ever to be kept.
    if (this.opts.keep === 0 || this.opts.budgetBytes === 0) return Promise.resolve();
    const payload = Buffer.from(entry.payload.subarray(0, this.opts.payloadBytes));
    const source = cut(entry.source);
    const topic = cut(entry.topic);
    const reason = cut(entry.reason);
    const bytes =
      payload.length +
      Buffer.byteLength(source) +
      Buffer.byteLength(topic) +
      Buffer.byteLength(reason) +
      REJECT_OVERHEAD;
    return new Promise((resolve, reject) => {
      this.pending.push({
        atMs: Date.now(),
        source,
        topic,
        reason,
        payload,
        payloadBytes: entry.payloadLength ?? entry.payload.length,
        bytes,
        resolve,
        reject,
      });
      this.pendingBytes += bytes;
      // What waits is bounded like what is kept: entries the next commit would trim at once are let go now.
      while (
        this.pending.length > 0 &&
        (this.pending.length > this.opts.keep || this.pendingBytes > this.opts.budgetBytes)
      ) {
        const limit: RejectLimit = this.pending.length > this.opts.keep ? 'count' : 'bytes';
        const p = this.pending.shift() as PendingReject;
        this.pendingBytes -= p.bytes;
        this.opts.onDropped?.(1, limit);
        p.resolve();
      }
    });
  }

  /** Writes the waiting rejects and trims the log to its bounds. Runs inside the caller's transaction. */
  writePending(): number {
    const batch = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    this.writing.push(...batch);
    for (const p of batch) {
      this.stmt.insert.run(p.atMs, p.source, p.topic, p.reason, p.payload, p.payloadBytes, p.bytes);
      this.count++;
      this.bytes += p.bytes;
    }
    this.trim();
    return batch.length;
  }

  /** After the transaction: resolves the rejects it wrote, or fails them and re-reads the totals. */
  settle(err?: Error): void {
    const done = this.writing;
    this.writing = [];
    if (err) {
      this.trimmed = { count: 0, bytes: 0 };
      this.reload();
      for (const p of done) p.reject(err);
    } else {
      this.reportTrimmed();
      for (const p of done) p.resolve();
    }
  }

  private reportTrimmed(): void {
    const { count, bytes } = this.trimmed;
    this.trimmed = { count: 0, bytes: 0 };
    if (count > 0) this.opts.onDropped?.(count, 'count');
    if (bytes > 0) this.opts.onDropped?.(bytes, 'bytes');
  }

  /** Fails what is still waiting (the buffer is closing). */
  close(): void {
    const err = new EdgeError(EdgeErrorCode.BUFFER_CLOSED, 'buffer is closed', true);
    for (const p of this.pending) p.reject(err);
    this.pending = [];
    this.pendingBytes = 0;
  }

  list(limit: number): KeptReject[] {
    return this.stmt.list.all(limit);
  }

  private reload(): void {
    const t = this.stmt.totals.get() ?? { n: 0, b: 0 };
    this.count = t.n;
    this.bytes = t.b;
  }

  /** Deletes the oldest rows until both bounds hold. Runs inside a transaction. */
  private trim(): void {
    const over = () => this.count > this.opts.keep || this.bytes > this.opts.budgetBytes;
    if (!over()) return;
    let upTo = 0;
    // Row by row, stopping as soon as the bounds hold: usually one or two rows per commit, and each
    // row read walks to its `bytes` column past the payload.
    for (const r of this.stmt.oldest.iterate()) {
      if (this.count > this.opts.keep) this.trimmed.count++;
      else this.trimmed.bytes++;
      this.count--;
      this.bytes -= r.bytes;
      upTo = r.id;
      if (!over()) break;
    }
    if (upTo > 0) this.stmt.deleteUpTo.run(upTo);
  }
}

/**
 * The latest kept rejects of a buffer file, read without opening it for writing: `fieldbeam-edge
 * rejects` runs beside the agent and must neither change nor create the file.
 */
export function readRejects(path: string, limit: number): KeptReject[] {
  if (!existsSync(path)) throw new Error(`no buffer file at ${path}: check data_dir and edge in the config`);
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT * FROM rejects ORDER BY id DESC LIMIT ?').all(limit) as (KeptReject & {
      payload_bytes?: number | null;
    })[];
    return rows.map((r) => ({
      id: r.id,
      at_ms: r.at_ms,
      source: r.source,
      topic: r.topic,
      reason: r.reason,
      payload: r.payload ?? Buffer.alloc(0),
      payload_bytes: r.payload_bytes ?? r.payload?.length ?? 0,
    }));
  } finally {
    db.close();
  }
}
