import { bufferLimits, type Observation } from '@fieldbeam/protocol';
import type Database from 'better-sqlite3';
import { BOOT_ID, unsyncedMonoMs } from './clock-restamp.js';
import { DroppedRanges } from './dropped-ranges.js';
import type { OutboxBatch } from './outbox.js';
import { packRow, unpackRow } from './row-form.js';
import { ROW_OVERHEAD } from './schema.js';

/** A reading as it is written to the buffer. */
export interface BufferRow {
  obs: string;
  bytes: number;
  receivedMs: number;
  /** Monotonic time at receipt while the wall clock was not synchronised (see `ClockRestamp`). */
  monoMs: number | null;
}

/** The rows one append writes, all received at `receivedMs` (`monoMs` on the monotonic clock). */
export function toRows(
  observations: readonly Observation[],
  receivedMs: number,
  monoMs: number,
): BufferRow[] {
  return observations.map((o) => {
    const obs = JSON.stringify(o);
    return {
      obs,
      bytes: Buffer.byteLength(obs) + ROW_OVERHEAD,
      receivedMs,
      monoMs: unsyncedMonoMs(o, monoMs),
    };
  });
}

/**
 * Rows per multi-row INSERT, largest first: a statement of 32 rows costs about half as much per row as
 * 32 statements of one (1.7 -> 0.9 µs a row, mostly better-sqlite3's cost per call), and a commit
 * under load carries hundreds of rows.
 */
const INSERT_CHUNKS = [32, 8] as const;
const ROW_COLUMNS = '(obs, bytes, received_ms, mono_ms, boot_id, form)';
const ROW_PARAMS = '(?, ?, ?, ?, ?, ?)';
/** Parameters per row in `ROW_PARAMS`. */
const ROW_ARITY = 6;

/** Puts a row's values for `ROW_PARAMS` into `args` from `at`, its text in its stored form (`packRow`). */
function rowArgs(r: BufferRow, args: unknown[], at: number): void {
  const p = packRow(r.obs);
  args[at] = p.obs;
  args[at + 1] = r.bytes;
  args[at + 2] = r.receivedMs;
  args[at + 3] = r.monoMs;
  args[at + 4] = r.monoMs === null ? null : BOOT_ID;
  args[at + 5] = p.form;
}

/** Rows and bytes removed by an ack. */
export interface Removed {
  n: number;
  b: number;
}

/**
 * The readings table (`outbox`): rows in sequence order, the batches taken from it and not yet
 * acknowledged, and room made under `drop_oldest` (recorded in `DroppedRanges`). It owns no
 * transaction: `SqliteOutbox` writes, drops and deletes inside its group commit, so that readings
 * leave only once the uplink acknowledged them and a delete never costs an fsync of its own.
 */
export class SqliteBuffer {
  /** Rows and bytes in the table, as committed (a drop counts from inside its commit). */
  depth: number;
  bytes: number;
  /** Rows committed and acknowledged since the buffer was opened. */
  appended = 0;
  acked = 0;
  /** Highest sequence handed out by `take`: the next take starts after it. Starts over on reopen. */
  private takenUpTo = 0;
  /** Bytes of rows taken and not yet acked; bounded so `drop_oldest` always has room to work with. */
  private takenBytes = 0;
  /** Rows and bytes of each taken batch by its first sequence number, so an ack needs no query. */
  private readonly taken = new Map<
    number,
    { last: number; n: number; bytes: number /** Dropped ranges it carries. */; dropped?: number[] }
  >();
  readonly droppedRanges: DroppedRanges;
  /** Acked ranges not yet deleted: deletes ride along with the next commit (see `release`). */
  private pendingDeletes: [number, number][] = [];
  /** Dropped ranges reported by acknowledged batches, forgotten with the next commit (as deletes are). */
  private pendingForget: number[] = [];
  private readonly stmt;

  /** `capacity`: the bytes readings may use. */
  constructor(
    db: Database.Database,
    private readonly capacity: number,
  ) {
    this.droppedRanges = new DroppedRanges(db);
    const totals = db.prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM outbox').get() as {
      n: number;
      b: number;
    };
    this.depth = totals.n;
    this.bytes = totals.b;
    this.stmt = {
      insert: db.prepare(`INSERT INTO outbox ${ROW_COLUMNS} VALUES ${ROW_PARAMS}`),
      insertMany: INSERT_CHUNKS.map((n) => ({
        n,
        stmt: db.prepare(`INSERT INTO outbox ${ROW_COLUMNS} VALUES ${Array(n).fill(ROW_PARAMS).join(', ')}`),
        args: new Array<unknown>(n * ROW_ARITY),
      })),
      take: db.prepare<[number, number], { seq: number; obs: string; bytes: number; form: number | null }>(
        'SELECT seq, obs, bytes, form FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      sumRange: db.prepare<[number, number], Removed>(
        'SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM outbox WHERE seq BETWEEN ? AND ?',
      ),
      deleteRange: db.prepare('DELETE FROM outbox WHERE seq BETWEEN ? AND ?'),
      oldestFree: db.prepare<[number, number], { seq: number; bytes: number }>(
        'SELECT seq, bytes FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      oldest: db.prepare<[], { received_ms: number }>('SELECT received_ms FROM outbox ORDER BY seq LIMIT 1'),
    };
  }

  /** Rows at or before this sequence are in a batch on its way: nothing rewrites or drops them. */
  get takenThrough(): number {
    return this.takenUpTo;
  }

  /** Bytes free for readings, less `incoming` already admitted to the commit being prepared. */
  room(incoming: number): number {
    return this.capacity - this.bytes - incoming;
  }

  /**
   * Writes rows, each in its stored form (see `packRow`); `bytes` still counts the whole text, so the
   * capacity means what it meant. Runs inside the commit.
   */
  insert(rows: readonly BufferRow[]): void {
    let i = 0;
    // In chunks (rows of one VALUES list take their sequence numbers in order), the rest one by one.
    for (const chunk of this.stmt.insertMany) {
      for (; i + chunk.n <= rows.length; i += chunk.n) {
        for (let k = 0; k < chunk.n; k++) rowArgs(rows[i + k] as BufferRow, chunk.args, k * ROW_ARITY);
        chunk.stmt.run(chunk.args);
      }
    }
    const args = new Array<unknown>(ROW_ARITY);
    for (; i < rows.length; i++) {
      rowArgs(rows[i] as BufferRow, args, 0);
      this.stmt.insert.run(args);
    }
  }

  /** Counts rows once the commit that wrote them is done. */
  committed(rows: number, bytes: number): void {
    this.depth += rows;
    this.bytes += bytes;
    this.appended += rows;
  }

  /**
   * Drops the oldest rows not currently taken until `incoming` more bytes fit within the capacity;
   * returns how many. Runs inside the commit.
   */
  makeRoom(incoming: number): number {
    const over = this.bytes + incoming - this.capacity;
    return over > 0 ? this.dropOldest(over) : 0;
  }

  /**
   * Deletes the oldest rows not currently taken until `need` bytes are free, and records which (see
   * `DroppedRanges`); returns how many. Runs inside a transaction.
   */
  private dropOldest(need: number): number {
    let freed = 0;
    let count = 0;
    let after = this.takenUpTo;
    /** Runs of consecutive sequence numbers dropped. */
    const runs: [number, number][] = [];
    while (freed < need) {
      const rows = this.stmt.oldestFree.all(after, 512);
      if (rows.length === 0) break;
      for (const r of rows) {
        if (freed >= need) break;
        this.stmt.deleteRange.run(r.seq, r.seq);
        freed += r.bytes;
        count++;
        after = r.seq;
        const run = runs[runs.length - 1];
        if (run && run[1] + 1 === r.seq) run[1] = r.seq;
        else runs.push([r.seq, r.seq]);
      }
    }
    if (runs.length > 0) this.droppedRanges.record(runs);
    this.bytes -= freed;
    this.depth -= count;
    return count;
  }

  take(maxCount: number, maxBytes: number): OutboxBatch | undefined {
    // At most half the capacity may be in flight: rows in flight are spared by `drop_oldest`, so the
    // other half is always there for it to drop, and the buffer stays within its bound.
    const budget = this.capacity / 2 - this.takenBytes;
    if (budget <= 0) return undefined;
    const rows = this.stmt.take.all(this.takenUpTo, maxCount);
    if (rows.length === 0) return undefined;
    // Drops not yet reported ride along; the room they take in the message comes off the readings'.
    const dropped = this.droppedRanges.carry(bufferLimits.maxDroppedRanges);
    const room = dropped.length > 0 ? maxBytes - JSON.stringify(dropped).length - 16 : maxBytes;
    const texts: string[] = [];
    let size = 0;
    let last = 0;
    let takenBytes = 0;
    for (const r of rows) {
      const text = unpackRow(r.obs, r.form);
      // Bytes, as the message limits count them: the row's UTF-8 size is in `bytes` (a text's length
      // counts UTF-16 units, a third of the bytes of most CJK text, and a batch so measured would be
      // over the limit and set aside whole by the collector). Never less than the length.
      const textBytes = Math.max(text.length, r.bytes - ROW_OVERHEAD);
      // The first row always goes, even alone, so one large reading can never wedge the buffer.
      if (texts.length > 0 && (size + textBytes + 1 > room || takenBytes + r.bytes > budget)) break;
      texts.push(text);
      size += textBytes + 1;
      takenBytes += r.bytes;
      last = r.seq;
    }
    this.takenBytes += takenBytes;
    const first = rows[0]?.seq ?? last;
    if (dropped.length > 0) {
      this.taken.set(first, { last, n: texts.length, bytes: takenBytes, dropped: dropped.map((r) => r[0]) });
      this.takenUpTo = last;
      return { first, last, rows: texts, dropped };
    }
    this.taken.set(first, { last, n: texts.length, bytes: takenBytes });
    this.takenUpTo = last;
    return { first, last, rows: texts };
  }

  /**
   * An acknowledged batch exactly as taken: queues its delete (and the forgetting of the drops it
   * reported) for the next commit and returns what it removes. Taken rows are never dropped or
   * rewritten, so what was taken is exactly what goes. Undefined for a range not taken as one batch:
   * `removeRange` deletes that inside a transaction of the caller's.
   */
  release(first: number, last: number): Removed | undefined {
    const known = this.taken.get(first);
    if (!known || known.last !== last) return undefined;
    this.taken.delete(first);
    this.pendingDeletes.push([first, last]);
    if (known.dropped) this.pendingForget.push(...known.dropped);
    return { n: known.n, b: known.bytes };
  }

  /** Deletes a range at once and returns what it held. Runs inside a transaction. */
  removeRange(first: number, last: number): Removed {
    const sum = this.stmt.sumRange.get(first, last) ?? { n: 0, b: 0 };
    this.stmt.deleteRange.run(first, last);
    return sum;
  }

  /** Counts an ack's rows out (whether their delete is done or queued). */
  acknowledged(removed: Removed): void {
    this.depth -= removed.n;
    this.bytes -= removed.b;
    this.takenBytes = Math.max(0, this.takenBytes - removed.b);
    this.acked += removed.n;
  }

  /** Whether acked ranges or reported drops wait for a commit. */
  get hasPendingDeletes(): boolean {
    return this.pendingDeletes.length > 0 || this.pendingForget.length > 0;
  }

  /** Deletes what acks queued. Runs inside the commit. */
  applyDeletes(): void {
    for (const [first, last] of this.pendingDeletes) this.stmt.deleteRange.run(first, last);
    this.pendingDeletes = [];
    if (this.pendingForget.length > 0) {
      this.droppedRanges.forget(this.pendingForget);
      this.pendingForget = [];
    }
  }

  /** Receipt time of the oldest row. */
  oldestReceivedMs(): number | null {
    return this.stmt.oldest.get()?.received_ms ?? null;
  }
}
