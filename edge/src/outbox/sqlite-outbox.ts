import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { bufferLimits, type Observation, observationId } from '@fieldbeam/protocol';
import Database from 'better-sqlite3';
import { EdgeError, EdgeErrorCode } from '../errors.js';
import { DroppedRanges, prepareDroppedRanges } from './dropped-ranges.js';
import {
  CLOCK_RESTAMPED,
  CLOCK_UNSYNCED,
  type DeliveryOutcome,
  type FullPolicy,
  type KeptReject,
  type MqttDelivery,
  type Outbox,
  type OutboxBatch,
  type OutboxStats,
  type RejectEntry,
  type RetainedState,
} from './outbox.js';
import { prepareRejectTable, type RejectLimit, RejectTable } from './reject-table.js';
import { pendingKey, prepareRetainedTable, type RetainedCheck, RetainedTable } from './retained-table.js';

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

/** CLOCK_MONOTONIC in ms: libuv's hrtime is the system's monotonic clock, shared by every process of a boot. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}
const BOOT_ID = readBootId();

/** The observation with receipt-based times moved to `receivedMs`, its flags updated and its id recomputed. */
function restamp(o: Observation, receivedMs: number): Observation {
  const received = new Date(receivedMs).toISOString();
  const edgeTime = o.quality?.includes('edge_time') ?? false;
  const time = edgeTime ? received : o.time;
  const quality = (o.quality ?? []).map((q) => (q === CLOCK_UNSYNCED ? CLOCK_RESTAMPED : q));
  const id = observationId({
    source: o.source,
    station: o.station,
    sensor: o.sensor,
    variable: o.variable,
    time,
    value: o.value,
    text: o.text,
  });
  return { ...o, id, time, received, quality };
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  -- AUTOINCREMENT: a sequence number is never reused, even after the table drains empty,
  -- so batch message ids never collide inside JetStream's duplicate window.
  CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    obs TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    -- Monotonic clock (ms since boot) at receipt, for readings stamped while the wall clock was
    -- not yet synchronised (NULL otherwise): they are re-stamped once it is.
    mono_ms INTEGER,
    boot_id TEXT
  );
  -- The latest QoS 1/2 MQTT delivery per client and packet id, written in the same transaction as its
  -- readings, so that a re-delivery after a lost PUBACK is acknowledged without being stored twice
  -- (see appendOnce). Upserted: at most 65,535 rows per client; pruned by age and window.
  CREATE TABLE IF NOT EXISTS mqtt_deliveries (
    client_id TEXT NOT NULL,
    packet_id INTEGER NOT NULL,
    hash BLOB NOT NULL,
    -- Per client, the order deliveries were committed in: a re-delivery must be among the latest.
    n INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (client_id, packet_id)
  ) WITHOUT ROWID;
`;

function tryOpen(path: string, synchronous: string): Database.Database {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.exec(SCHEMA);
    prepareRejectTable(db);
    prepareRetainedTable(db);
    prepareDroppedRanges(db);
    // Touch every table so a damaged file fails here, at start, and not on the first write.
    db.prepare('SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM outbox').get();
    db.prepare('SELECT COUNT(*) FROM rejects').get();
    db.prepare('SELECT COUNT(*) FROM mqtt_deliveries').get();
    db.prepare('SELECT COUNT(*) FROM mqtt_retained').get();
    db.prepare('SELECT COUNT(*) FROM dropped_ranges').get();
    const check = db.pragma('quick_check(1)', { simple: true });
    if (check !== 'ok') throw new Error(`quick_check: ${String(check)}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * The buffer holds every reading and whatever rejected payloads carried: readable by the agent's user
 * only. The folder is made 0700 and the file 0600 before SQLite opens it (an existing one is narrowed
 * too); SQLite gives its -wal and -shm files the database file's mode, and those left from an earlier
 * run are narrowed here as well.
 */
function restrictFileModes(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
  for (const suffix of ['', '-wal', '-shm']) {
    const file = path + suffix;
    if (existsSync(file) && (statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
  }
}

/**
 * Opens the buffer file. A file that cannot be read (corrupted, truncated, not a database) is moved
 * aside, never deleted, and a fresh one is started: the agent must always come back up, and what
 * can be salvaged stays on disk for a person.
 */
function openDatabase(
  path: string,
  synchronous: string,
  onCorrupt?: (movedTo: string, err: Error) => void,
): Database.Database {
  // Outside the try: a file whose mode cannot be set is not a damaged file to move aside.
  restrictFileModes(path);
  try {
    return tryOpen(path, synchronous);
  } catch (err) {
    if (!existsSync(path)) throw err;
    const movedTo = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(path + suffix)) renameSync(path + suffix, movedTo + suffix);
    }
    onCorrupt?.(movedTo, err as Error);
    restrictFileModes(path);
    return tryOpen(path, synchronous);
  }
}

/** Bytes a row costs beyond its JSON: the sequence number, the length column and page overhead. */
const ROW_OVERHEAD = 32;

const deliveryKey = (d: MqttDelivery) => `${d.packetId} ${d.clientId}`;

/** How long rejects wait for a commit of readings to join before they are committed on their own. */
const REJECT_COMMIT_DELAY_MS = 50;

/** How often remembered MQTT deliveries are pruned (with the next commit). */
const PRUNE_DELIVERIES_MS = 60 * 60 * 1000;

interface Pending {
  rows: { obs: string; bytes: number; receivedMs: number; monoMs: number | null }[];
  bytes: number;
  delivery: MqttDelivery | undefined;
  retained: RetainedState | undefined;
  /** What its retained state asks of the commit, found when it is admitted to one. */
  retainedCheck?: RetainedCheck;
  /** Set inside a commit when the delivery turned out to re-deliver one committed earlier in it. */
  duplicate?: boolean;
  resolve: (outcome: DeliveryOutcome) => void;
  reject: (err: Error) => void;
}

export class SqliteOutbox implements Outbox {
  readonly bufferId: string;
  readonly bufferStart: number;
  private readonly db: Database.Database;
  /** What readings may use: the capacity less the rejects' share. */
  private readonly capacity: number;
  private readonly rejects: RejectTable;
  private bytes: number;
  private depth: number;
  private dropped: number;
  private appended = 0;
  private acked = 0;
  /** Highest sequence handed out by `take`: the next take starts after it. Starts over on reopen. */
  private takenUpTo = 0;
  /** Bytes of rows taken and not yet acked; bounded so `drop_oldest` always has room to work with. */
  private takenBytes = 0;
  /** Rows and bytes of each taken batch by its first sequence number, so an ack needs no query. */
  private readonly taken = new Map<
    number,
    { last: number; n: number; bytes: number /** Dropped ranges it carries. */; dropped?: number[] }
  >();
  private readonly droppedRanges: DroppedRanges;
  /** Dropped ranges reported by acknowledged batches, forgotten with the next commit (as deletes are). */
  private pendingForget: number[] = [];
  /** Inputs this buffer file set aside as rejects (persisted with the next commit). */
  private quarantined: number;
  private quarantinedSaved: number;
  private queue: Pending[] = [];
  /** Appends waiting for space under the `block` policy, oldest first. */
  private blocked: Pending[] = [];
  private scheduled = false;
  private lastCommitMs = 0;
  /** Acked ranges not yet deleted: deletes ride along with the next commit (see `ack`). */
  private pendingDeletes: [number, number][] = [];
  private deleteTimer: NodeJS.Timeout | undefined;
  /** Commits waiting rejects when no readings came to carry them (see `recordReject`). */
  private rejectTimer: NodeJS.Timeout | undefined;
  private nextAppend: { promise: Promise<void>; resolve: () => void } | undefined;
  private closed = false;
  private readonly resendWindow: number;
  private readonly deliveryMaxAgeMs: number;
  private readonly deliveryMaxClients: number;
  /** Client ids with deliveries in the file. */
  private deliveryClients = 0;
  /** Per MQTT client: the number and time of its latest committed delivery (loaded on first use). */
  private readonly lastDelivery = new Map<string, { n: number; atMs: number }>();
  private lastPruneMs = 0;
  private duplicates = 0;
  private readonly retained: RetainedTable;
  private retainedRepeats = 0;
  private readonly stmt;

  constructor(private readonly opts: SqliteOutboxOptions) {
    this.db = openDatabase(opts.path, opts.synchronous, opts.onCorruptFile);
    const rejectBudget = Math.floor(opts.capacityBytes * (opts.rejectShare ?? 0.05));
    this.capacity = opts.capacityBytes - rejectBudget;
    this.rejects = new RejectTable(this.db, {
      keep: opts.keepRejects,
      budgetBytes: rejectBudget,
      payloadBytes: opts.rejectPayloadBytes ?? 4096,
      ...(opts.onRejectsDropped ? { onDropped: opts.onRejectsDropped } : {}),
    });
    const getMeta = this.db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?');
    const setMeta = this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    let bufferId = getMeta.get('buffer_id')?.value;
    if (!bufferId) {
      bufferId = randomBytes(6).toString('hex');
      setMeta.run('buffer_id', bufferId);
    }
    this.bufferId = bufferId;
    // Where this id's account of sequence numbers begins: 1 for a new file; for a file from a version
    // that did not report its buffer to the collector, the next number it hands out.
    let start = Number(getMeta.get('seq_start')?.value ?? 0);
    if (!(start >= 1)) {
      const used = this.db
        .prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'")
        .get();
      start = (used?.seq ?? 0) + 1;
      setMeta.run('seq_start', String(start));
    }
    this.bufferStart = start;
    this.dropped = Number(getMeta.get('dropped')?.value ?? 0);
    this.quarantined = Number(getMeta.get('quarantined')?.value ?? 0);
    this.quarantinedSaved = this.quarantined;
    this.droppedRanges = new DroppedRanges(this.db);
    const totals = this.db
      .prepare('SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM outbox')
      .get() as {
      n: number;
      b: number;
    };
    this.depth = totals.n;
    this.bytes = totals.b;
    this.resendWindow = opts.resendWindow ?? 1024;
    this.deliveryMaxAgeMs = opts.deliveryMaxAgeMs ?? 7 * 24 * 3600 * 1000;
    this.deliveryMaxClients = opts.deliveryMaxClients ?? 1000;
    this.stmt = {
      insert: this.db.prepare(
        'INSERT INTO outbox (obs, bytes, received_ms, mono_ms, boot_id) VALUES (?, ?, ?, ?, ?)',
      ),
      unsynced: this.db.prepare<
        [string, number],
        { seq: number; obs: string; mono_ms: number; bytes: number }
      >(
        'SELECT seq, obs, mono_ms, bytes FROM outbox WHERE mono_ms IS NOT NULL AND boot_id = ? AND seq > ? ORDER BY seq',
      ),
      restamp: this.db.prepare('UPDATE outbox SET obs = ?, bytes = ?, mono_ms = NULL WHERE seq = ?'),
      take: this.db.prepare<[number, number], { seq: number; obs: string; bytes: number }>(
        'SELECT seq, obs, bytes FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      sumRange: this.db.prepare<[number, number], { n: number; b: number }>(
        'SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM outbox WHERE seq BETWEEN ? AND ?',
      ),
      deleteRange: this.db.prepare('DELETE FROM outbox WHERE seq BETWEEN ? AND ?'),
      oldestFree: this.db.prepare<[number, number], { seq: number; bytes: number }>(
        'SELECT seq, bytes FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?',
      ),
      oldest: this.db.prepare<[], { received_ms: number }>(
        'SELECT received_ms FROM outbox ORDER BY seq LIMIT 1',
      ),
      setMeta,
      getDelivery: this.db.prepare<[string, number], { hash: Buffer; n: number }>(
        'SELECT hash, n FROM mqtt_deliveries WHERE client_id = ? AND packet_id = ?',
      ),
      lastDelivery: this.db.prepare<[string], { n: number | null; at_ms: number | null }>(
        'SELECT MAX(n) AS n, MAX(at_ms) AS at_ms FROM mqtt_deliveries WHERE client_id = ?',
      ),
      putDelivery: this.db.prepare(
        'INSERT OR REPLACE INTO mqtt_deliveries (client_id, packet_id, hash, n, at_ms) VALUES (?, ?, ?, ?, ?)',
      ),
      pruneOldDeliveries: this.db.prepare('DELETE FROM mqtt_deliveries WHERE at_ms < ?'),
      pruneClientDeliveries: this.db.prepare('DELETE FROM mqtt_deliveries WHERE client_id = ? AND n <= ?'),
      countDeliveryClients: this.db.prepare<[], { c: number }>(
        'SELECT COUNT(DISTINCT client_id) AS c FROM mqtt_deliveries',
      ),
      leastRecentClients: this.db.prepare<[number], { client_id: string }>(
        'SELECT client_id FROM mqtt_deliveries GROUP BY client_id ORDER BY MAX(at_ms) LIMIT ?',
      ),
      forgetClient: this.db.prepare('DELETE FROM mqtt_deliveries WHERE client_id = ?'),
    };
    this.deliveryClients = this.stmt.countDeliveryClients.get()?.c ?? 0;
    this.retained = new RetainedTable(this.db, {
      maxTopics: opts.retainedMaxTopics ?? 10_000,
      ...(opts.onRetainedTopicsForgotten ? { onForgotten: opts.onRetainedTopicsForgotten } : {}),
    });
  }

  append(observations: Observation[]): Promise<void> {
    return this.appendOnce(observations).then(() => undefined);
  }

  /**
   * Like `append`, for the readings of one MQTT message: `delivery` is remembered in the same commit.
   * Resolves `'duplicate'` and stores nothing when `delivery` re-delivers a message already committed:
   * it `mayBeResend`, and the client's delivery under that packet id has the same hash and is among its
   * latest `resendWindow`. Such a message needs no room, so it is answered even while the buffer is full.
   * With `retained` (messages from an external broker), resolves `'retained_repeat'` and stores nothing
   * when it is the broker's replay of the payload last stored from its topic (see `RetainedTable`).
   */
  appendOnce(
    observations: Observation[],
    delivery?: MqttDelivery,
    retained?: RetainedState,
  ): Promise<DeliveryOutcome> {
    if (this.closed)
      return Promise.reject(new EdgeError(EdgeErrorCode.BUFFER_CLOSED, 'buffer is closed', true));
    if (observations.length === 0) return Promise.resolve('stored');
    const receivedMs = Date.now();
    const mono = monotonicMs();
    const rows = observations.map((o) => {
      const obs = JSON.stringify(o);
      const monoMs = o.quality?.includes(CLOCK_UNSYNCED) ? mono : null;
      return { obs, bytes: Buffer.byteLength(obs) + ROW_OVERHEAD, receivedMs, monoMs };
    });
    const bytes = rows.reduce((s, r) => s + r.bytes, 0);
    if (bytes > this.capacity) {
      return Promise.reject(
        new EdgeError(EdgeErrorCode.BUFFER_FULL, `${bytes} bytes exceed the whole buffer capacity`, false),
      );
    }
    return new Promise((resolve, reject) => {
      const p: Pending = { rows, bytes, delivery, retained, resolve, reject };
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

  private applyDeletes(): void {
    for (const [first, last] of this.pendingDeletes) this.stmt.deleteRange.run(first, last);
    this.pendingDeletes = [];
    if (this.pendingForget.length > 0) {
      this.droppedRanges.forget(this.pendingForget);
      this.pendingForget = [];
    }
  }

  /** Deletes acked ranges on their own when no append came to carry them. */
  private flushDeletes(): void {
    this.deleteTimer = undefined;
    if (this.closed || (this.pendingDeletes.length === 0 && this.pendingForget.length === 0)) return;
    // Losing a delete to a power cut only means sending those readings again (and the collector
    // drops repeats by id), so this commit need not wait for the disk.
    this.db.pragma('synchronous = NORMAL');
    try {
      this.db.transaction(() => this.applyDeletes())();
    } finally {
      this.db.pragma(`synchronous = ${this.opts.synchronous}`);
    }
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
      if (p.delivery && this.isResend(p.delivery)) {
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
      const room = this.capacity - this.bytes - incoming;
      if (this.blocked.length === 0 && (p.bytes <= room || this.opts.policy === 'drop_oldest')) {
        admitted.push(p);
        incoming += p.bytes;
        if (p.retained && p.retainedCheck)
          retainedAhead.set(pendingKey(p.retainedCheck), p.retained.payloadHash);
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
    if (!synced) this.db.pragma('synchronous = NORMAL');
    try {
      const write = this.db.transaction(() => {
        this.applyDeletes();
        rejects = this.rejects.writePending();
        let dropped = 0;
        const over = this.bytes + incoming - this.capacity;
        if (over > 0) dropped = this.dropOldest(over);
        for (const p of admitted) {
          const d = p.delivery;
          if (d) {
            const key = deliveryKey(d);
            if (delivered.has(key) && this.isResend(d)) {
              p.duplicate = true;
              continue;
            }
            delivered.add(key);
            this.rememberDelivery(d, now);
          }
          if (p.retained && p.retainedCheck) this.retained.remember(p.retainedCheck, p.retained.payloadHash);
          for (const r of p.rows)
            this.stmt.insert.run(r.obs, r.bytes, r.receivedMs, r.monoMs, r.monoMs === null ? null : BOOT_ID);
        }
        if (dropped > 0) this.stmt.setMeta.run('dropped', String(this.dropped + dropped));
        if (this.quarantined !== this.quarantinedSaved) {
          this.stmt.setMeta.run('quarantined', String(this.quarantined));
          this.quarantinedSaved = this.quarantined;
        }
        if (now - this.lastPruneMs >= PRUNE_DELIVERIES_MS) this.pruneDeliveries(now);
        return dropped;
      });
      const dropped = write();
      if (dropped > 0) {
        this.dropped += dropped;
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
      this.depth += p.rows.length;
      this.bytes += p.bytes;
      this.appended += p.rows.length;
      readings += p.rows.length;
      p.resolve('stored');
    }
    this.opts.onCommit?.({ readings, rejects, synced });
    if (!synced) return;
    const waiting = this.nextAppend;
    this.nextAppend = undefined;
    waiting?.resolve();
    // A re-delivery left waiting for room behind its original needs none now that the original is in.
    if (this.blocked.some((p) => p.delivery && delivered.has(deliveryKey(p.delivery)))) this.schedule();
  }

  /** The number and time of the client's latest committed delivery. */
  private latestDelivery(clientId: string): { n: number; atMs: number } {
    let last = this.lastDelivery.get(clientId);
    if (!last) {
      const row = this.stmt.lastDelivery.get(clientId);
      last = { n: row?.n ?? 0, atMs: row?.at_ms ?? 0 };
      this.lastDelivery.set(clientId, last);
    }
    return last;
  }

  /** Whether `d` re-delivers a committed message (see `appendOnce`). */
  private isResend(d: MqttDelivery): boolean {
    if (!d.mayBeResend) return false;
    const row = this.stmt.getDelivery.get(d.clientId, d.packetId);
    return (
      row !== undefined &&
      Buffer.compare(row.hash, d.hash) === 0 &&
      row.n > this.latestDelivery(d.clientId).n - this.resendWindow
    );
  }

  /** Records a delivery as the client's latest. Runs inside the transaction that stores its readings. */
  private rememberDelivery(d: MqttDelivery, nowMs: number): void {
    const last = this.latestDelivery(d.clientId);
    if (last.n === 0 && ++this.deliveryClients > this.deliveryMaxClients) this.forgetClients();
    // Ahead of the disk if the transaction fails: a gap in the numbers, which is harmless.
    last.n++;
    last.atMs = nowMs;
    const hash = Buffer.from(d.hash.buffer, d.hash.byteOffset, d.hash.byteLength);
    this.stmt.putDelivery.run(d.clientId, d.packetId, hash, last.n, nowMs);
  }

  /**
   * Forgets the least recently active client ids down to 90% of `deliveryMaxClients` (one query for
   * many, not one per new id). A client forgotten this way that re-sends a message committed earlier
   * gets it stored again. Runs inside a transaction.
   */
  private forgetClients(): void {
    const excess = this.deliveryClients - Math.floor(this.deliveryMaxClients * 0.9);
    let forgotten = 0;
    for (const { client_id } of this.stmt.leastRecentClients.all(excess)) {
      this.stmt.forgetClient.run(client_id);
      this.lastDelivery.delete(client_id);
      forgotten++;
    }
    this.deliveryClients -= forgotten;
    if (forgotten > 0) this.opts.onDeliveryClientsForgotten?.(forgotten);
  }

  /** Forgets deliveries too old or too far back to be re-delivered. Runs inside a transaction. */
  private pruneDeliveries(nowMs: number): void {
    const cutoff = nowMs - this.deliveryMaxAgeMs;
    this.stmt.pruneOldDeliveries.run(cutoff);
    for (const [clientId, last] of this.lastDelivery) {
      if (last.atMs < cutoff) this.lastDelivery.delete(clientId);
      else this.stmt.pruneClientDeliveries.run(clientId, last.n - this.resendWindow);
    }
    this.deliveryClients = this.stmt.countDeliveryClients.get()?.c ?? 0;
    this.lastPruneMs = nowMs;
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
    if (this.closed) return undefined;
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
      // The first row always goes, even alone, so one large reading can never wedge the buffer.
      if (texts.length > 0 && (size + r.obs.length + 1 > room || takenBytes + r.bytes > budget)) break;
      texts.push(r.obs);
      size += r.obs.length + 1;
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

  ack(first: number, last: number): void {
    if (this.closed) return;
    const known = this.taken.get(first);
    let removed: { n: number; b: number };
    if (known && known.last === last) {
      // Taken rows are never dropped or rewritten, so what was taken is exactly what goes. The
      // delete itself waits for the next commit (or 50 ms): a commit of its own per batch would
      // cost an fsync each, the largest cost of draining a backlog.
      this.taken.delete(first);
      this.pendingDeletes.push([first, last]);
      if (known.dropped) this.pendingForget.push(...known.dropped);
      this.deleteTimer ??= setTimeout(() => this.flushDeletes(), 50);
      removed = { n: known.n, b: known.bytes };
    } else {
      removed = this.db.transaction(() => {
        const sum = this.stmt.sumRange.get(first, last) ?? { n: 0, b: 0 };
        this.stmt.deleteRange.run(first, last);
        return sum;
      })();
    }
    this.depth -= removed.n;
    this.bytes -= removed.b;
    this.takenBytes = Math.max(0, this.takenBytes - removed.b);
    this.acked += removed.n;
    if (this.blocked.length > 0) this.schedule();
  }

  /**
   * Once the wall clock is synchronised: readings stamped with the receipt time while it was not, and
   * still waiting here, get their time from the monotonic clock plus the now-known offset, and with
   * it a new id. Readings from an earlier boot cannot be placed (the monotonic clock restarted) and
   * keep their flag. Returns how many were re-stamped.
   */
  restampUnsynced(nowMs = Date.now()): number {
    if (this.closed) return 0;
    const offset = nowMs - monotonicMs();
    const rows = this.stmt.unsynced.all(BOOT_ID, this.takenUpTo);
    if (rows.length === 0) return 0;
    let delta = 0;
    this.db.transaction(() => {
      for (const r of rows) {
        const obs = restamp(JSON.parse(r.obs) as Observation, r.mono_ms + offset);
        const text = JSON.stringify(obs);
        const bytes = Buffer.byteLength(text) + ROW_OVERHEAD;
        delta += bytes - r.bytes;
        this.stmt.restamp.run(text, bytes, r.seq);
      }
    })();
    this.bytes += delta;
    return rows.length;
  }

  recordReject(entry: RejectEntry): Promise<void> {
    if (this.closed)
      return Promise.reject(new EdgeError(EdgeErrorCode.BUFFER_CLOSED, 'buffer is closed', true));
    // Counted whether or not the log keeps it: the buffer's account of inputs it never stored.
    this.quarantined++;
    const written = this.rejects.queue(entry);
    // Not a commit of its own: the next readings' commit takes it along, or, when none comes, one
    // commit for all the rejects of the next moment (each commit rewrites the table's pages).
    this.rejectTimer ??= setTimeout(() => {
      this.rejectTimer = undefined;
      if (!this.closed) this.flush();
    }, REJECT_COMMIT_DELAY_MS);
    return written;
  }

  listRejects(limit: number): KeptReject[] {
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
      depth: this.depth,
      bytes: this.bytes,
      capacityBytes: this.capacity,
      oldestReceivedMs: this.closed ? null : (this.stmt.oldest.get()?.received_ms ?? null),
      dropped: this.dropped,
      quarantined: this.quarantined,
      appended: this.appended,
      acked: this.acked,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Commit what is queued (its sensors are waiting for their acks) and the pending deletes.
    this.flush();
    if (this.deleteTimer) clearTimeout(this.deleteTimer);
    if (this.rejectTimer) clearTimeout(this.rejectTimer);
    this.flushDeletes();
    this.closed = true;
    const err = new EdgeError(EdgeErrorCode.BUFFER_CLOSED, 'buffer closed while waiting for space', true);
    for (const p of this.blocked) p.reject(err);
    this.blocked = [];
    this.rejects.close();
    this.db.close();
  }
}
