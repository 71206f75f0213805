import type { Observation } from '@fieldbeam/protocol';
import type Database from 'better-sqlite3';
import { EdgeError, EdgeErrorCode } from '../errors.js';
import { BufferMeta } from './buffer-meta.js';
import { ClockRestamp, monotonicMs } from './clock-restamp.js';
import { DeliveryLog, deliveryKey } from './delivery-log.js';
import type {
  DeliveryOutcome,
  FullPolicy,
  KeptReject,
  MqttDelivery,
  Outbox,
  OutboxBatch,
  OutboxQueue,
  OutboxStats,
  RejectEntry,
  RetainedState,
} from './outbox.js';
import { type RejectLimit, RejectTable } from './reject-table.js';
import { pendingKey, type RetainedCheck, RetainedTable } from './retained-table.js';
import { openBufferDatabase, PAGE_SIZE } from './schema.js';
import { type BufferRow, SqliteBuffer, toRows } from './sqlite-buffer.js';

export interface SqliteOutboxOptions {
  path: string;
  capacityBytes: number;
  policy: FullPolicy;
  /** Appends arriving within this window share one transaction (and one fsync). */
  commitWindowMs: number;
  /** `FULL` survives power loss between commits; `NORMAL` only process crashes. */
  synchronous: 'FULL' | 'NORMAL';
  /** How many rejected inputs to keep for inspection. */
  keepRejects: number;
  /**
   * The share of `capacityBytes` set aside for rejected inputs (default 0.05): readings may use the
   * rest, rejects never more than this, so together they stay within the capacity.
   */
  rejectShare?: number;
  /** Payload bytes kept per rejected input (default 4096); its full length is recorded beside it. */
  rejectPayloadBytes?: number;
  /** Called with the number of kept rejects discarded, oldest first, to stay within a limit. */
  onRejectsDropped?: (count: number, limit: RejectLimit) => void;
  /**
   * Called after each commit with what it wrote, and whether it was synced to disk (it is when it
   * holds readings). For tests and measurements.
   */
  onCommit?: (commit: { readings: number; rejects: number; synced: boolean }) => void;
  /**
   * Called after each WAL checkpoint with the frames the log held and how many it copied into the
   * file. For tests and measurements.
   */
  onCheckpoint?: (checkpoint: { frames: number; checkpointed: number; idle: boolean }) => void;
  /** Called when a WAL checkpoint failed (the card full or failing); the next commit tries again. */
  onCheckpointFailed?: (err: Error) => void;
  /** Pages written to the WAL (as estimated, see `walPages`) after which it is checkpointed (default `WAL_CHECKPOINT_PAGES`). */
  walCheckpointPages?: number;
  /** Called with the number of rows dropped by `drop_oldest`. */
  onDrop?: (count: number) => void;
  /** Called when the file at start was unreadable and was moved aside to `movedTo`. */
  onCorruptFile?: (movedTo: string, err: Error) => void;
  /**
   * A re-delivery is recognised only among a client's latest this many committed deliveries (default
   * 1024): more than a sensor keeps unacknowledged at once, far fewer than the 65,535 packet ids, so a
   * client that comes back to a packet id with the same content much later is not taken for one.
   */
  resendWindow?: number;
  /** Deliveries remembered longer than this are forgotten (default 7 days). */
  deliveryMaxAgeMs?: number;
  /**
   * Client ids whose deliveries are remembered (default 1000): past it, the least recently active
   * tenth are forgotten at once, so a flood of new client ids cannot grow the file and the map.
   */
  deliveryMaxClients?: number;
  /** Called with the number of client ids forgotten for `deliveryMaxClients`. */
  onDeliveryClientsForgotten?: (count: number) => void;
  /**
   * Topics whose last stored retained payload is remembered (default 10,000); past it the least
   * recently updated tenth are forgotten at once, and a forgotten topic's next replay is stored again.
   */
  retainedMaxTopics?: number;
  /** Called with the number of topics forgotten for `retainedMaxTopics`. */
  onRetainedTopicsForgotten?: (count: number) => void;
}

/** How long rejects wait for a commit of readings to join before they are committed on their own. */
const REJECT_COMMIT_DELAY_MS = 50;

/**
 * The WAL is checkpointed once commits have written about this many pages to it (8 MiB of 2 KiB
 * pages), by the buffer itself after the commit's appends are answered, not by SQLite inside the
 * commit that crosses its own threshold (see `checkpointSoon`). A checkpoint costs mostly its two
 * syncs (the log, then the file), whatever the number of pages, so fewer and larger ones stall fewer
 * readings; the log on disk stays within about this size.
 */
export const WAL_CHECKPOINT_PAGES = 4096;

/** Pages a commit writes beyond its rows: the table of sequence numbers, the counters, an index page or two. */
const COMMIT_PAGES = 4;

/** A log left with frames after a burst is checkpointed once no commit came for this long. */
const WAL_IDLE_CHECKPOINT_MS = 1000;

interface Pending {
  rows: BufferRow[];
  bytes: number;
  delivery: MqttDelivery | undefined;
  retained: RetainedState | undefined;
  /** What its retained state asks of the commit, found when it is admitted to one. */
  retainedCheck?: RetainedCheck;
  /** Set inside a commit when the delivery turned out to re-deliver one committed earlier in it. */
  duplicate?: boolean;
  resolve: (outcome: DeliveryOutcome) => void;
  reject: (err: Error) => void;
  /** Refused (BUFFER_FULL) rather than kept waiting when `block` finds no room for it. */
  noWait?: boolean;
}

/**
 * The `Outbox` on one SQLite file, and its group commit: appends arriving together, the MQTT
 * deliveries and retained payloads they carry, the rejects waiting, the drops that make room and the
 * deletes of acknowledged rows are written in one transaction with one sync to disk, and an append's
 * promise (a sensor's PUBACK) resolves only once that transaction is committed. The parts it commits
 * for own no transaction of their own: the readings table (`SqliteBuffer`, with `DroppedRanges`), the
 * delivery log (`DeliveryLog`), the retained payloads (`RetainedTable`), the reject log
 * (`RejectTable`), the re-stamp of unsynced times (`ClockRestamp`) and the file's counters
 * (`BufferMeta`); the tables are in `schema.ts`.
 */
export class SqliteOutbox implements Outbox, OutboxQueue {
  readonly bufferId: string;
  readonly bufferStart: number;
  private readonly db: Database.Database;
  private readonly buffer: SqliteBuffer;
  private readonly meta: BufferMeta;
  private readonly rejects: RejectTable;
  private readonly deliveries: DeliveryLog;
  private readonly retained: RetainedTable;
  private readonly clock: ClockRestamp;
  /** What readings may use: the capacity less the rejects' share. */
  private readonly capacity: number;
  private queue: Pending[] = [];
  /** Appends waiting for space under the `block` policy, oldest first. */
  private blocked: Pending[] = [];
  private scheduled = false;
  private lastCommitMs = 0;
  private deleteTimer: NodeJS.Timeout | undefined;
  /** Commits waiting rejects when no readings came to carry them (see `recordReject`). */
  private rejectTimer: NodeJS.Timeout | undefined;
  private nextAppend: { promise: Promise<void>; resolve: () => void } | undefined;
  private closed = false;
  /** Pages written to the WAL since the last checkpoint, estimated from what the commits wrote. */
  private walPages = 0;
  /**
   * Bytes of the acknowledged rows whose delete waits for a commit: a delete rewrites the pages that
   * held them, as many as their insert wrote, which the WAL estimate must count (a backlog drains
   * thousands of rows a batch).
   */
  private deletingBytes = 0;
  private checkpointQueued = false;
  private readonly walCheckpointPages: number;
  private readonly idleCheckpoint: NodeJS.Timeout;
  private duplicates = 0;
  private retainedRepeats = 0;

  constructor(private readonly opts: SqliteOutboxOptions) {
    this.db = openBufferDatabase(opts.path, opts.synchronous, opts.onCorruptFile);
    // Checkpoints are run by `checkpointSoon`, after a commit's appends are answered: SQLite's own
    // runs inside the commit that crosses its threshold, so the sensors of that commit waited for it.
    this.db.pragma('wal_autocheckpoint = 0');
    this.walCheckpointPages = opts.walCheckpointPages ?? WAL_CHECKPOINT_PAGES;
    // Unref'd: it never holds the process open on its own.
    this.idleCheckpoint = setInterval(() => {
      if (this.walPages > 0 && Date.now() - this.lastCommitMs >= WAL_IDLE_CHECKPOINT_MS)
        this.checkpoint(true);
    }, WAL_IDLE_CHECKPOINT_MS).unref();
    const rejectBudget = Math.floor(opts.capacityBytes * (opts.rejectShare ?? 0.05));
    this.capacity = opts.capacityBytes - rejectBudget;
    this.rejects = new RejectTable(this.db, {
      keep: opts.keepRejects,
      budgetBytes: rejectBudget,
      payloadBytes: opts.rejectPayloadBytes ?? 4096,
      ...(opts.onRejectsDropped ? { onDropped: opts.onRejectsDropped } : {}),
    });
    this.meta = new BufferMeta(this.db);
    this.bufferId = this.meta.bufferId;
    this.bufferStart = this.meta.bufferStart;
    this.buffer = new SqliteBuffer(this.db, this.capacity);
    this.clock = new ClockRestamp(this.db);
    this.deliveries = new DeliveryLog(this.db, {
      resendWindow: opts.resendWindow ?? 1024,
      maxAgeMs: opts.deliveryMaxAgeMs ?? 7 * 24 * 3600 * 1000,
      maxClients: opts.deliveryMaxClients ?? 1000,
      onClientsForgotten: opts.onDeliveryClientsForgotten,
    });
    this.retained = new RetainedTable(this.db, {
      maxTopics: opts.retainedMaxTopics ?? 10_000,
      ...(opts.onRetainedTopicsForgotten ? { onForgotten: opts.onRetainedTopicsForgotten } : {}),
    });
  }

  append(observations: Observation[]): Promise<void> {
    return this.appendOnce(observations).then(() => undefined);
  }

  appendOrRefuse(observations: Observation[]): Promise<void> {
    return this.enqueue(observations, undefined, undefined, true).then(() => undefined);
  }

  /**
   * Like `append`, for the readings of one MQTT message: `delivery` is remembered in the same commit.
   * Resolves `'duplicate'` and stores nothing when `delivery` re-delivers a message already committed
   * (see `DeliveryLog.isResend`). Such a message needs no room, so it is answered even while the
   * buffer is full. With `retained` (messages from an external broker), resolves `'retained_repeat'`
   * and stores nothing when it is the broker's replay of the payload last stored from its topic (see
   * `RetainedTable`).
   */
  appendOnce(
    observations: Observation[],
    delivery?: MqttDelivery,
    retained?: RetainedState,
  ): Promise<DeliveryOutcome> {
    return this.enqueue(observations, delivery, retained, false);
  }

  private enqueue(
    observations: Observation[],
    delivery: MqttDelivery | undefined,
    retained: RetainedState | undefined,
    noWait: boolean,
  ): Promise<DeliveryOutcome> {
    if (observations.length === 0) return Promise.resolve('stored');
    return this.appendRows(toRows(observations, Date.now(), monotonicMs()), delivery, retained, noWait);
  }

  /**
   * `appendOnce` (or with `noWait`, `appendOrRefuse`) of rows already made by `toRows`: for a source
   * on another thread, which serialises its observations there (see `startBufferThread`).
   */
  appendRows(
    rows: BufferRow[],
    delivery: MqttDelivery | undefined,
    retained: RetainedState | undefined,
    noWait: boolean,
  ): Promise<DeliveryOutcome> {
    if (this.closed)
      return Promise.reject(new EdgeError(EdgeErrorCode.BUFFER_CLOSED, 'buffer is closed', true));
    if (rows.length === 0) return Promise.resolve('stored');
    const bytes = rows.reduce((s, r) => s + r.bytes, 0);
    if (bytes > this.capacity) {
      return Promise.reject(
        new EdgeError(EdgeErrorCode.BUFFER_FULL, `${bytes} bytes exceed the whole buffer capacity`, false),
      );
    }
    return new Promise((resolve, reject) => {
      const p: Pending = { rows, bytes, delivery, retained, resolve, reject, noWait };
      if (this.blocked.length > 0) this.blocked.push(p);
      else this.queue.push(p);
      this.schedule();
    });
  }

  /**
   * Group commit: the first append after a quiet spell commits at once (on the next turn of the event
   * loop, so a whole socket read of messages shares it); under load, commits are spaced by the window.
   */
  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      if (!this.closed) this.flush();
    };
    const wait = this.lastCommitMs + this.opts.commitWindowMs - Date.now();
    if (wait <= 0) setImmediate(run);
    else setTimeout(run, wait);
  }

  /** Resolves when the next append is committed: lets the forwarder wait instead of polling. */
  whenAppended(): Promise<void> {
    if (!this.nextAppend) {
      let resolve = () => {};
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.nextAppend = { promise, resolve };
    }
    return this.nextAppend.promise;
  }

  /** Deletes acked ranges on their own when no append came to carry them. */
  private flushDeletes(): void {
    this.deleteTimer = undefined;
    if (this.closed || !this.buffer.hasPendingDeletes) return;
    // Losing a delete to a power cut only means sending those readings again (and the collector
    // drops repeats by id), so this commit need not wait for the disk.
    this.db.pragma('synchronous = NORMAL');
    try {
      this.db.transaction(() => this.buffer.applyDeletes())();
    } finally {
      this.db.pragma(`synchronous = ${this.opts.synchronous}`);
    }
    this.wrote(this.deletingBytes);
    this.deletingBytes = 0;
  }

  /** Counts a commit's pages into the WAL estimate; past the threshold, a checkpoint follows it. */
  private wrote(bytes: number): void {
    this.walPages += COMMIT_PAGES + Math.ceil(bytes / PAGE_SIZE);
    if (this.walPages >= this.walCheckpointPages) this.checkpointSoon();
  }

  /**
   * Checkpoints once the commit's answers are out: their promise reactions (the buffer thread's reply
   * to the main thread, a PUBACK) run before an immediate does. A commit that comes meanwhile waits for
   * it, as it waited inside SQLite's; the appends of the commit that crossed the threshold do not.
   */
  private checkpointSoon(): void {
    if (this.checkpointQueued) return;
    this.checkpointQueued = true;
    setImmediate(() => {
      this.checkpointQueued = false;
      this.checkpoint(false);
    });
  }

  /**
   * A PASSIVE checkpoint (never waits for a reader or writer): copies the log into the file with the
   * syncs `synchronous` asks for, as SQLite's automatic one did; the next commit starts the log over.
   */
  private checkpoint(idle: boolean): void {
    if (this.closed) return;
    let r: { log: number; checkpointed: number } | undefined;
    try {
      [r] = this.db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[];
    } catch (err) {
      // It runs from a timer, outside any caller: thrown, it would stop the buffer (SQLite ignored a
      // failed automatic checkpoint). The commits are in the log all the same; the count stays, so
      // the next commit tries again.
      this.opts.onCheckpointFailed?.(err as Error);
      return;
    }
    const frames = r?.log ?? 0;
    const checkpointed = r?.checkpointed ?? 0;
    // -1: it could not run (another connection checkpointing): nothing copied, the count stays.
    if (frames < 0) return;
    // Frames a reader kept it from copying stay counted, so the next commit tries again.
    this.walPages = Math.max(0, frames - checkpointed);
    this.opts.onCheckpoint?.({ frames, checkpointed, idle });
  }

  /** Commits everything queued in one transaction, making room first according to the policy. */
  private flush(): void {
    const admitted: Pending[] = [];
    let incoming = 0;
    const candidates = [...this.blocked, ...this.queue];
    this.blocked = [];
    this.queue = [];
    /** Retained payloads the admitted appends will remember, by topic: a replay may follow in the same commit. */
    const retainedAhead = new Map<string, Uint8Array>();
    for (const p of candidates) {
      if (p.delivery && this.deliveries.isResend(p.delivery)) {
        this.duplicates++;
        p.resolve('duplicate');
        continue;
      }
      if (p.retained) {
        p.retainedCheck = this.retained.check(p.retained, retainedAhead);
        if (p.retainedCheck.repeat) {
          this.retainedRepeats++;
          p.resolve('retained_repeat');
          continue;
        }
      }
      const room = this.buffer.room(incoming);
      if (this.blocked.length === 0 && (p.bytes <= room || this.opts.policy === 'drop_oldest')) {
        admitted.push(p);
        incoming += p.bytes;
        if (p.retained && p.retainedCheck)
          retainedAhead.set(pendingKey(p.retainedCheck), p.retained.payloadHash);
      } else if (p.noWait) {
        // Taken by nothing, so its client can be told to send it again later.
        p.reject(new EdgeError(EdgeErrorCode.BUFFER_FULL, 'the buffer is full (policy block)', true));
      } else {
        // `block`: keep order; everything behind waits too, and its sensors wait for their acks.
        this.blocked.push(p);
      }
    }
    // Rejects ride along with the readings' commit. Without readings they are committed all the same
    // (their sources wait for that), but not synced: losing a reject to a power cut costs nothing.
    const synced = admitted.length > 0;
    if (!synced && !this.rejects.hasPending) return;
    const now = Date.now();
    /** Deliveries committed by this transaction: a re-delivery of one can be in the same batch. */
    const delivered = new Set<string>();
    let rejects = 0;
    let droppedRows = 0;
    if (!synced) this.db.pragma('synchronous = NORMAL');
    try {
      const write = this.db.transaction(() => {
        this.buffer.applyDeletes();
        rejects = this.rejects.writePending();
        const dropped = this.buffer.makeRoom(incoming);
        // The readings of all admitted appends, in order, go in together: fewer statements (see `insert`).
        const rows: BufferRow[] = [];
        for (const p of admitted) {
          const d = p.delivery;
          if (d) {
            const key = deliveryKey(d);
            if (delivered.has(key) && this.deliveries.isResend(d)) {
              p.duplicate = true;
              continue;
            }
            delivered.add(key);
            this.deliveries.remember(d, now);
          }
          if (p.retained && p.retainedCheck) this.retained.remember(p.retainedCheck, p.retained.payloadHash);
          for (const r of p.rows) rows.push(r);
        }
        this.buffer.insert(rows);
        this.meta.writeCounters(dropped);
        this.deliveries.pruneIfDue(now);
        return dropped;
      });
      const dropped = write();
      droppedRows = dropped;
      if (dropped > 0) {
        this.meta.dropped += dropped;
        this.opts.onDrop?.(dropped);
      }
    } catch (err) {
      this.rejects.settle(err as Error);
      for (const p of admitted) p.reject(err as Error);
      return;
    } finally {
      if (!synced) this.db.pragma(`synchronous = ${this.opts.synchronous}`);
    }
    this.lastCommitMs = Date.now();
    this.rejects.settle();
    let readings = 0;
    for (const p of admitted) {
      if (p.duplicate) {
        this.duplicates++;
        p.resolve('duplicate');
        continue;
      }
      this.buffer.committed(p.rows.length, p.bytes);
      readings += p.rows.length;
      p.resolve('stored');
    }
    this.opts.onCommit?.({ readings, rejects, synced });
    // The commit also deleted the acknowledged rows, and as many bytes of the oldest as it dropped for room.
    this.wrote(incoming + this.deletingBytes + (droppedRows > 0 ? incoming : 0));
    this.deletingBytes = 0;
    if (!synced) return;
    const waiting = this.nextAppend;
    this.nextAppend = undefined;
    waiting?.resolve();
    // A re-delivery left waiting for room behind its original needs none now that the original is in.
    if (this.blocked.some((p) => p.delivery && delivered.has(deliveryKey(p.delivery)))) this.schedule();
  }

  take(maxCount: number, maxBytes: number): OutboxBatch | undefined {
    if (this.closed) return undefined;
    return this.buffer.take(maxCount, maxBytes);
  }

  ack(first: number, last: number): void {
    if (this.closed) return;
    let removed = this.buffer.release(first, last);
    if (removed) {
      // The delete itself waits for the next commit (or 50 ms): a commit of its own per batch would
      // cost an fsync each, the largest cost of draining a backlog.
      this.deleteTimer ??= setTimeout(() => this.flushDeletes(), 50);
      this.deletingBytes += removed.b;
    } else {
      removed = this.db.transaction(() => this.buffer.removeRange(first, last))();
      this.wrote(removed.b);
    }
    this.buffer.acknowledged(removed);
    if (this.blocked.length > 0) this.schedule();
  }

  /**
   * Once the wall clock is synchronised: readings stamped with the receipt time while it was not, and
   * still waiting here (not taken), are re-stamped (see `ClockRestamp`). Returns how many.
   */
  async restampUnsynced(nowMs = Date.now()): Promise<number> {
    if (this.closed) return 0;
    const offsetMs = nowMs - monotonicMs();
    const rows = this.clock.pending(this.buffer.takenThrough);
    if (rows.length === 0) return 0;
    this.buffer.bytes += this.db.transaction(() => this.clock.apply(rows, offsetMs))();
    this.wrote(rows.length * 256);
    return rows.length;
  }

  recordReject(entry: RejectEntry): Promise<void> {
    if (this.closed)
      return Promise.reject(new EdgeError(EdgeErrorCode.BUFFER_CLOSED, 'buffer is closed', true));
    // Counted whether or not the log keeps it: the buffer's account of inputs it never stored.
    this.meta.quarantined++;
    const written = this.rejects.queue(entry);
    // Not a commit of its own: the next readings' commit takes it along, or, when none comes, one
    // commit for all the rejects of the next moment (each commit rewrites the table's pages).
    this.rejectTimer ??= setTimeout(() => {
      this.rejectTimer = undefined;
      if (!this.closed) this.flush();
    }, REJECT_COMMIT_DELAY_MS);
    return written;
  }

  async listRejects(limit: number): Promise<KeptReject[]> {
    return this.closed ? [] : this.rejects.list(limit);
  }

  /** MQTT re-deliveries recognised and not stored again since the buffer was opened. */
  get duplicateDeliveries(): number {
    return this.duplicates;
  }

  /** Brokers' replays of retained messages already stored, not stored again since the buffer was opened. */
  get retainedRepeatDeliveries(): number {
    return this.retainedRepeats;
  }

  stats(): OutboxStats {
    return {
      depth: this.buffer.depth,
      bytes: this.buffer.bytes,
      capacityBytes: this.capacity,
      // An empty buffer has no oldest unsent reading, even while the rows an ack took wait for their
      // delete (part of the next commit).
      oldestReceivedMs: this.closed || this.buffer.depth === 0 ? null : this.buffer.oldestReceivedMs(),
      dropped: this.meta.dropped,
      quarantined: this.meta.quarantined,
      appended: this.buffer.appended,
      acked: this.buffer.acked,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Commit what is queued (its sensors are waiting for their acks) and the pending deletes.
    this.flush();
    if (this.deleteTimer) clearTimeout(this.deleteTimer);
    if (this.rejectTimer) clearTimeout(this.rejectTimer);
    this.flushDeletes();
    clearInterval(this.idleCheckpoint);
    this.closed = true;
    const err = new EdgeError(EdgeErrorCode.BUFFER_CLOSED, 'buffer closed while waiting for space', true);
    for (const p of this.blocked) p.reject(err);
    this.blocked = [];
    this.rejects.close();
    this.db.close();
  }
}
