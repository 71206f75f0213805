import { chmodSync, closeSync, existsSync, mkdirSync, openSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/**
 * The buffer file's tables, every one of them: the parts that use them (`SqliteBuffer`, `DeliveryLog`,
 * `RejectTable`, `RetainedTable`, `DroppedRanges`, `BufferMeta`) prepare their statements against this
 * schema and share one database and one transaction, the buffer's group commit.
 */
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
    boot_id TEXT,
    -- How obs is stored (see row-form.ts): NULL for the JSON text as it is (as earlier versions wrote
    -- every row), or a form with a part left out that reading the row puts back.
    form INTEGER
  );
  -- The latest QoS 1/2 MQTT delivery per client and packet id, written in the same transaction as its
  -- readings, so that a re-delivery after a lost PUBACK is acknowledged without being stored twice
  -- (see DeliveryLog). Upserted: at most 65,535 rows per client; pruned by age and window.
  CREATE TABLE IF NOT EXISTS mqtt_deliveries (
    client_id TEXT NOT NULL,
    packet_id INTEGER NOT NULL,
    hash BLOB NOT NULL,
    -- Per client, the order deliveries were committed in: a re-delivery must be among the latest.
    n INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    PRIMARY KEY (client_id, packet_id)
  ) WITHOUT ROWID;
  -- Inputs the agent could not use, kept (bounded in rows and bytes) for an operator to inspect.
  CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    -- The first bytes of the payload.
    payload BLOB,
    -- The payload's length as received.
    payload_bytes INTEGER,
    -- What the row counts against the rejects' share of the buffer capacity.
    bytes INTEGER
  );
  -- Per MQTT topic of an external broker: a digest of the payload last stored from it, so that the
  -- broker's replay of its retained message on every (re)subscribe is not stored again. Keyed by a
  -- digest of the topic, so that a row is small whatever the topic's length.
  CREATE TABLE IF NOT EXISTS mqtt_retained (
    topic_hash BLOB PRIMARY KEY,
    payload_hash BLOB NOT NULL,
    -- The order entries were updated in: the least recently updated are forgotten first.
    n INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS mqtt_retained_n ON mqtt_retained (n);
  -- Sequence ranges dropped unsent under drop_oldest, kept until a batch that reports them to the
  -- collector is acknowledged: with them the collector tells these gaps from readings lost on the way.
  -- Drops during one outage continue where the last one ended and extend its row, so the table stays a
  -- few rows long; it is emptied as soon as the uplink carries them.
  CREATE TABLE IF NOT EXISTS dropped_ranges (first INTEGER PRIMARY KEY, last INTEGER NOT NULL);
`;

/** Bytes a buffered reading costs beyond its JSON: the sequence number, the length column and page overhead. */
export const ROW_OVERHEAD = 32;

/** Bytes a kept reject costs beyond its texts and payload: its id, time, lengths and page overhead. */
export const REJECT_OVERHEAD = 64;

/** Brings tables written by an earlier version up to date. Runs at open, after `SCHEMA`. */
function migrate(db: Database.Database): void {
  const outbox = new Set((db.pragma('table_info(outbox)') as { name: string }[]).map((c) => c.name));
  // Files from before rows were stored in a compact form: their rows keep their whole text (form NULL)
  // and are sent as they are. Adding a column rewrites no row.
  if (!outbox.has('form')) db.exec('ALTER TABLE outbox ADD COLUMN form INTEGER');
  // Files from before readings taken with an unsynced clock were re-stamped: none of their rows was.
  if (!outbox.has('mono_ms')) db.exec('ALTER TABLE outbox ADD COLUMN mono_ms INTEGER');
  if (!outbox.has('boot_id')) db.exec('ALTER TABLE outbox ADD COLUMN boot_id TEXT');
  const columns = new Set((db.pragma('table_info(rejects)') as { name: string }[]).map((c) => c.name));
  // Files from before rejects were bounded by bytes: their rows were kept whole.
  if (!columns.has('payload_bytes')) db.exec('ALTER TABLE rejects ADD COLUMN payload_bytes INTEGER');
  if (!columns.has('bytes')) db.exec('ALTER TABLE rejects ADD COLUMN bytes INTEGER');
  db.prepare(
    `UPDATE rejects SET payload_bytes = COALESCE(payload_bytes, length(payload)),
       bytes = length(payload) + length(CAST(source AS BLOB)) + length(CAST(topic AS BLOB))
         + length(CAST(reason AS BLOB)) + ${REJECT_OVERHEAD}
     WHERE bytes IS NULL`,
  ).run();
}

/**
 * The buffer file's page size. Each commit rewrites whole pages: the last, partly filled page of the
 * readings, a page or two of the delivery log per client, the table of sequence numbers and the first
 * page, each once as a WAL frame and again at the checkpoint. With 2 KiB pages instead of SQLite's
 * 4 KiB, a commit of one reading writes about a third less, one of twenty (10,000 readings/s) a third
 * less, and one of 500 (full speed) about 5% less (measured through this buffer with deliveries).
 */
export const PAGE_SIZE = 2048;

/** Files holding up to this much are rebuilt with `PAGE_SIZE` at open (a `VACUUM`, done in well under a second on a card). */
const PAGE_SIZE_REBUILD_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Gives the file `PAGE_SIZE`: a new file takes it as it is created; an existing file with another page
 * size (made by an earlier version) is rebuilt by a `VACUUM`, which keeps every row and is atomic
 * under its rollback journal, but only while it is small: a large backlog keeps its page size, and is
 * rebuilt at a later start once it has drained. A rebuild that cannot run (another connection holds
 * the file) is left for a later start; the file works the same either way.
 */
function settlePageSize(db: Database.Database): void {
  const size = db.pragma('page_size', { simple: true }) as number;
  if (size === PAGE_SIZE) return;
  const pages = db.pragma('page_count', { simple: true }) as number;
  if (pages === 0) {
    db.pragma(`page_size = ${PAGE_SIZE}`);
    return;
  }
  // What is in use: the pages a drained backlog left free cost the rebuild nothing (it drops them).
  const free = db.pragma('freelist_count', { simple: true }) as number;
  if ((pages - free) * size > PAGE_SIZE_REBUILD_MAX_BYTES) return;
  try {
    // The page size of a file in WAL mode cannot change: the rebuild runs under a rollback journal.
    db.pragma('journal_mode = DELETE');
    db.pragma(`page_size = ${PAGE_SIZE}`);
    db.exec('VACUUM');
  } catch {
    // Busy: the file keeps its page size until a later start.
  }
}

function tryOpen(path: string, synchronous: string): Database.Database {
  const db = new Database(path);
  try {
    settlePageSize(db);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.exec(SCHEMA);
    migrate(db);
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
 * Opens the buffer file with its schema up to date. A file that cannot be read (corrupted, truncated,
 * not a database) is moved aside, never deleted, and a fresh one is started: the agent must always
 * come back up, and what can be salvaged stays on disk for a person.
 */
export function openBufferDatabase(
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
