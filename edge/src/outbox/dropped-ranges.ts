import type Database from 'better-sqlite3';

/**
 * The buffer's record of the sequence numbers `drop_oldest` removed unsent. Why ranges and not a count:
 * a count cannot tell the collector which numbers are missing for a reason, so a batch lost on the way
 * could hide behind drops not yet visible to it (and the reverse); exact ranges make every gap either
 * explained or not, at any moment. The ranges travel in the batches themselves (`buffer.dropped`), so
 * they arrive as reliably as readings do and are forgotten once a batch carrying them is acknowledged.
 * It owns no transaction: `SqliteBuffer` calls it inside the buffer's commit (table in `schema.ts`).
 */
export class DroppedRanges {
  /** Ranges (by first number) in a batch taken and not yet acknowledged. Starts empty on reopen. */
  private readonly carried = new Set<number>();
  private readonly stmt;

  constructor(db: Database.Database) {
    this.stmt = {
      newest: db.prepare<[], { first: number; last: number }>(
        'SELECT first, last FROM dropped_ranges ORDER BY first DESC LIMIT 1',
      ),
      extend: db.prepare('UPDATE dropped_ranges SET last = ? WHERE first = ?'),
      insert: db.prepare('INSERT OR REPLACE INTO dropped_ranges (first, last) VALUES (?, ?)'),
      oldest: db.prepare<[number], { first: number; last: number }>(
        'SELECT first, last FROM dropped_ranges ORDER BY first LIMIT ?',
      ),
      forget: db.prepare('DELETE FROM dropped_ranges WHERE first = ?'),
      count: db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM dropped_ranges'),
    };
  }

  /**
   * Records runs of dropped sequence numbers (ascending, each `[first, last]` with no number between
   * them left in the buffer). Inside the transaction that deletes the rows. A run that continues the
   * newest range extends it, unless that range is already on its way in a batch.
   */
  record(runs: readonly [number, number][]): void {
    let newest = this.stmt.newest.get();
    for (const [first, last] of runs) {
      if (newest && newest.last + 1 === first && !this.carried.has(newest.first)) {
        this.stmt.extend.run(last, newest.first);
        newest = { first: newest.first, last };
      } else {
        this.stmt.insert.run(first, last);
        newest = { first, last };
      }
    }
  }

  /** Up to `max` ranges not yet in a batch, oldest first, now marked as carried by the batch taking them. */
  carry(max: number): [number, number][] {
    const out: [number, number][] = [];
    for (const r of this.stmt.oldest.all(max + this.carried.size)) {
      if (out.length >= max) break;
      if (this.carried.has(r.first)) continue;
      this.carried.add(r.first);
      out.push([r.first, r.last]);
    }
    return out;
  }

  /** The batch carrying these ranges was acknowledged: they are reported. Inside a transaction. */
  forget(firsts: readonly number[]): void {
    for (const first of firsts) {
      this.stmt.forget.run(first);
      this.carried.delete(first);
    }
  }

  /** Ranges waiting to be reported (for tests and status). */
  get size(): number {
    return this.stmt.count.get()?.n ?? 0;
  }
}
