import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';

/**
 * The buffer file's identity and its counters of readings it accounts for without holding them
 * (table `meta`). The counters are written inside the buffer's commit (`writeCounters`).
 */
export class BufferMeta {
  /** Random per buffer file: with the sequence range it makes batch message ids that never repeat. */
  readonly bufferId: string;
  /** The first sequence number accounted for under `bufferId`. */
  readonly bufferStart: number;
  /** Readings `drop_oldest` removed unsent from this file, as committed. */
  dropped: number;
  /** Inputs this buffer file set aside as rejects (persisted with the next commit). */
  quarantined: number;
  private quarantinedSaved: number;
  private readonly set;

  constructor(db: Database.Database) {
    const get = db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
    this.set = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    let bufferId = get.get('buffer_id')?.value;
    if (!bufferId) {
      bufferId = randomBytes(6).toString('hex');
      this.set.run('buffer_id', bufferId);
    }
    this.bufferId = bufferId;
    // Where this id's account of sequence numbers begins: 1 for a new file; for a file from a version
    // that did not report its buffer to the collector, the next number it hands out.
    let start = Number(get.get('seq_start')?.value ?? 0);
    if (!(start >= 1)) {
      const used = db
        .prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")
        .get();
      start = (used?.seq ?? 0) + 1;
      this.set.run('seq_start', String(start));
    }
    this.bufferStart = start;
    this.dropped = Number(get.get('dropped')?.value ?? 0);
    this.quarantined = Number(get.get('quarantined')?.value ?? 0);
    this.quarantinedSaved = this.quarantined;
  }

  /**
   * Writes the counters that changed, `newlyDropped` added to `dropped` (which the caller raises once
   * the commit is done). Runs inside the commit.
   */
  writeCounters(newlyDropped: number): void {
    if (newlyDropped > 0) this.set.run('dropped', String(this.dropped + newlyDropped));
    if (this.quarantined !== this.quarantinedSaved) {
      this.set.run('quarantined', String(this.quarantined));
      this.quarantinedSaved = this.quarantined;
    }
  }
}
