import type { EdgeStatus } from '@fieldbeam/protocol';
import type pg from 'pg';

/** One heartbeat as the registry keeps it: who, when the stream received it, what it said. */
export interface Heartbeat {
  edge: string;
  /** The stream's time of the message (not the edge's clock, which may be wrong). */
  seenAt: Date;
  streamSeq: number;
  status: EdgeStatus;
}

/** An edge of the fleet as the registry has it (the latest heartbeat's figures). */
export interface FleetEdgeRow {
  edge: string;
  firstSeen: Date;
  lastSeen: Date;
  intervalMs: number | null;
  version: string;
  uplink: string;
  bufferDepth: number;
  bufferBytes: number;
  bufferCapacityBytes: number;
  oldestUnsentAgeS: number | null;
  dropped: number;
  rejected: number;
  clock: string;
  diskFreeBytes: number | null;
  sensorCount: number | null;
  configRevision: number | null;
}

const COLUMNS = `edge, first_seen, last_seen, interval_ms, version, uplink, buffer_depth, buffer_bytes,
  buffer_capacity, oldest_unsent_age_s, dropped, rejected, clock, disk_free_bytes, sensor_count, config_revision`;

type Row = Record<string, unknown>;
const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

function fromRow(r: Row): FleetEdgeRow {
  return {
    edge: r.edge as string,
    firstSeen: r.first_seen as Date,
    lastSeen: r.last_seen as Date,
    intervalMs: num(r.interval_ms),
    version: r.version as string,
    uplink: r.uplink as string,
    bufferDepth: Number(r.buffer_depth),
    bufferBytes: Number(r.buffer_bytes),
    bufferCapacityBytes: Number(r.buffer_capacity),
    oldestUnsentAgeS: num(r.oldest_unsent_age_s),
    dropped: Number(r.dropped),
    rejected: Number(r.rejected),
    clock: r.clock as string,
    diskFreeBytes: num(r.disk_free_bytes),
    sensorCount: num(r.sensor_count),
    configRevision: num(r.config_revision),
  };
}

/** Keeps, per edge, the newest heartbeat of a batch (one row per edge in one statement). */
export function newestPerEdge(beats: readonly Heartbeat[]): Heartbeat[] {
  const newest = new Map<string, Heartbeat>();
  for (const b of beats) {
    const seen = newest.get(b.edge);
    const later = seen && b.seenAt.getTime() - seen.seenAt.getTime();
    if (!seen || (later as number) > 0 || (later === 0 && b.streamSeq > seen.streamSeq))
      newest.set(b.edge, b);
  }
  return [...newest.values()];
}

/**
 * The fleet registry's table (`fleet_edges`): one row per edge that ever sent a heartbeat, kept by
 * every collector of the database alike.
 */
export class FleetStore {
  constructor(private readonly db: pg.Pool | pg.PoolClient) {}

  /**
   * Records heartbeats in one statement. A heartbeat older than the one already kept (redelivered
   * after a newer one was recorded) changes nothing; `first_seen` stays the first.
   */
  async record(beats: readonly Heartbeat[]): Promise<void> {
    const rows = newestPerEdge(beats);
    if (rows.length === 0) return;
    const col = <T>(f: (b: Heartbeat, s: EdgeStatus) => T) => rows.map((b) => f(b, b.status));
    await this.db.query(
      `INSERT INTO fleet_edges (edge, first_seen, last_seen, stream_seq, interval_ms, version, uplink,
         buffer_depth, buffer_bytes, buffer_capacity, oldest_unsent_age_s, dropped, rejected, clock,
         disk_free_bytes, sensor_count, config_revision, status)
       SELECT e, t, t, q, i, v, u, d, b, c, o, dr, r, cl, df, sc, cr, st
       FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::int[], $5::text[], $6::text[],
         $7::bigint[], $8::bigint[], $9::bigint[], $10::float8[], $11::bigint[], $12::bigint[],
         $13::text[], $14::float8[], $15::int[], $16::bigint[], $17::jsonb[])
         AS x(e, t, q, i, v, u, d, b, c, o, dr, r, cl, df, sc, cr, st)
       ON CONFLICT (edge) DO UPDATE SET
         last_seen = EXCLUDED.last_seen, stream_seq = EXCLUDED.stream_seq,
         interval_ms = EXCLUDED.interval_ms, version = EXCLUDED.version, uplink = EXCLUDED.uplink,
         buffer_depth = EXCLUDED.buffer_depth, buffer_bytes = EXCLUDED.buffer_bytes,
         buffer_capacity = EXCLUDED.buffer_capacity, oldest_unsent_age_s = EXCLUDED.oldest_unsent_age_s,
         dropped = EXCLUDED.dropped, rejected = EXCLUDED.rejected, clock = EXCLUDED.clock,
         disk_free_bytes = EXCLUDED.disk_free_bytes, sensor_count = EXCLUDED.sensor_count,
         config_revision = EXCLUDED.config_revision, status = EXCLUDED.status
       WHERE fleet_edges.last_seen <= EXCLUDED.last_seen`,
      [
        col((b) => b.edge),
        col((b) => b.seenAt),
        col((b) => b.streamSeq),
        col((_, s) => s.intervalMs ?? null),
        col((_, s) => s.version.slice(0, 200)),
        col((_, s) => s.uplink),
        col((_, s) => s.buffer.depth),
        col((_, s) => s.buffer.bytes),
        col((_, s) => s.buffer.capacityBytes),
        col((_, s) => s.buffer.oldestUnsentAgeS),
        col((_, s) => s.buffer.dropped),
        col((_, s) => s.rejected),
        col((_, s) => s.clock),
        col((_, s) => s.diskFreeBytes),
        col((_, s) => s.sensorCount ?? s.sensors?.length ?? null),
        col((_, s) => s.config?.revision ?? null),
        col((_, s) => JSON.stringify(s)),
      ],
    );
  }

  /** Every edge seen, by id (the figures only: no heartbeat bodies, so a large fleet lists fast). */
  async list(): Promise<FleetEdgeRow[]> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS} FROM fleet_edges ORDER BY edge`);
    return rows.map(fromRow);
  }

  /** Forgets an edge (decommissioned): true when it was listed. A later heartbeat lists it again. */
  async forget(edge: string): Promise<boolean> {
    const { rowCount } = await this.db.query('DELETE FROM fleet_edges WHERE edge = $1', [edge]);
    return (rowCount ?? 0) > 0;
  }

  /** One edge with its latest heartbeat as sent, or undefined when it never sent one. */
  async get(edge: string): Promise<(FleetEdgeRow & { status: EdgeStatus }) | undefined> {
    const { rows } = await this.db.query<Row>(`SELECT ${COLUMNS}, status FROM fleet_edges WHERE edge = $1`, [
      edge,
    ]);
    const r = rows[0];
    return r ? { ...fromRow(r), status: r.status as EdgeStatus } : undefined;
  }
}
