import { readFileSync } from 'node:fs';
import { type Observation, observationId } from '@fieldbeam/protocol';
import type Database from 'better-sqlite3';
import { CLOCK_RESTAMPED, CLOCK_UNSYNCED } from './outbox.js';
import { unpackRow } from './row-form.js';
import { ROW_OVERHEAD } from './schema.js';

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
/** This boot: a monotonic time means nothing outside the boot it was read in. */
export const BOOT_ID = readBootId();

/** The monotonic time to keep beside a reading: set only while it is flagged `CLOCK_UNSYNCED`. */
export function unsyncedMonoMs(o: Observation, monoMs: number): number | null {
  return o.quality?.includes(CLOCK_UNSYNCED) ? monoMs : null;
}

/** The observation with receipt-based times moved to `receivedMs`, its flags updated and its id recomputed. */
export function restamp(o: Observation, receivedMs: number): Observation {
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

interface UnsyncedRow {
  seq: number;
  obs: string;
  mono_ms: number;
  bytes: number;
  /** How `obs` is stored (see row-form.ts). */
  form: number | null;
}

/**
 * Re-stamps buffered readings once the wall clock is synchronised: those stamped with the receipt
 * time while it was not get their time from the monotonic clock plus the now-known offset, and with it
 * a new id. Readings from an earlier boot cannot be placed (the monotonic clock restarted) and keep
 * their flag. It owns no transaction: `SqliteOutbox` runs `apply` inside one.
 */
export class ClockRestamp {
  private readonly stmt;

  constructor(db: Database.Database) {
    this.stmt = {
      unsynced: db.prepare<[string, number], UnsyncedRow>(
        'SELECT seq, obs, mono_ms, bytes, form FROM outbox WHERE mono_ms IS NOT NULL AND boot_id = ? AND seq > ? ORDER BY seq',
      ),
      // Rewritten whole (form NULL): rare, and a re-stamped reading's received differs from its time.
      restamp: db.prepare('UPDATE outbox SET obs = ?, bytes = ?, mono_ms = NULL, form = NULL WHERE seq = ?'),
    };
  }

  /** This boot's unsynced readings after `afterSeq` (rows already taken are not rewritten). */
  pending(afterSeq: number): UnsyncedRow[] {
    return this.stmt.unsynced.all(BOOT_ID, afterSeq);
  }

  /**
   * Rewrites `rows` with their monotonic time plus `offsetMs` (wall clock less monotonic clock, read
   * before `pending`); returns how many bytes they grew by. Runs inside a transaction.
   */
  apply(rows: readonly UnsyncedRow[], offsetMs: number): number {
    let delta = 0;
    for (const r of rows) {
      const obs = restamp(JSON.parse(unpackRow(r.obs, r.form)) as Observation, r.mono_ms + offsetMs);
      const text = JSON.stringify(obs);
      const bytes = Buffer.byteLength(text) + ROW_OVERHEAD;
      delta += bytes - r.bytes;
      this.stmt.restamp.run(text, bytes, r.seq);
    }
    return delta;
  }
}
