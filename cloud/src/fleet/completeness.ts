import type { ObservationBatch } from '@fieldbeam/protocol';
import type pg from 'pg';
import type { Logger } from 'pino';

/**
 * Provable completeness per edge. Every batch says which buffer file its sequence numbers belong to
 * (`buffer.id`), where that file's account starts, and the ranges the edge dropped unsent under
 * `drop_oldest`. The collector keeps, per edge and buffer, the ranges it received and the ranges the
 * edge says it dropped. A number from `start` up to the highest one known that is in neither was
 * sent (a later number proves it was handed out) and never arrived: an unexplained gap, which should
 * always be 0. A replaced buffer file has a new id and its own sequence space, so it is never a gap.
 *
 * Inputs the edge rejected before buffering them (`gaps.quarantined` in its heartbeat) never took a
 * sequence number, so they explain no gap here; the heartbeat reports them beside.
 */

export type SeqRange = readonly [number, number];
type Kind = 'received' | 'dropped';

/** Rows of one round for `edge_seq_ranges`: its batches' ranges, merged per edge, buffer and kind. */
export interface SeqSpan {
  edge: string;
  /** '' for batches of agents that do not name their buffer. */
  bufferId: string;
  /** Undefined with bufferId ''. */
  start: number | undefined;
  kind: Kind;
  first: number;
  last: number;
}

/** Sorted, merged ranges (adjacent ones joined). */
export function mergeRanges(ranges: Iterable<SeqRange>): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const [first, last] of sorted) {
    const prev = out[out.length - 1];
    if (prev && first <= prev[1] + 1) prev[1] = Math.max(prev[1], last);
    else out.push([first, last]);
  }
  return out;
}

const count = (ranges: readonly SeqRange[]) => ranges.reduce((n, [a, b]) => n + (b - a + 1), 0);

/** The spans of a round's batches, as few rows as they merge into. */
export function roundSpans(batches: readonly Pick<ObservationBatch, 'edge' | 'seq' | 'buffer'>[]): SeqSpan[] {
  const byKey = new Map<string, { span: Omit<SeqSpan, 'first' | 'last'>; ranges: SeqRange[] }>();
  const add = (edge: string, bufferId: string, start: number | undefined, kind: Kind, r: SeqRange) => {
    const key = `${kind}\n${edge}\n${bufferId}`;
    let entry = byKey.get(key);
    if (!entry) {
      entry = { span: { edge, bufferId, start, kind }, ranges: [] };
      byKey.set(key, entry);
    }
    entry.ranges.push(r);
  };
  for (const b of batches) {
    const id = b.buffer?.id ?? '';
    add(b.edge, id, b.buffer?.start, 'received', b.seq);
    for (const r of b.buffer?.dropped ?? []) add(b.edge, id, b.buffer?.start, 'dropped', r);
  }
  return [...byKey.values()].flatMap(({ span, ranges }) =>
    mergeRanges(ranges).map(([first, last]) => ({ ...span, first, last })),
  );
}

/**
 * Writes a round's spans inside its ingest transaction: plain inserts (one statement for all), so that
 * rounds committing side by side never wait on each other. A buffer is registered with its start the
 * first time it is seen.
 */
export async function recordSpans(client: pg.ClientBase, spans: readonly SeqSpan[]): Promise<void> {
  if (spans.length === 0) return;
  await client.query(
    `INSERT INTO edge_seq_ranges (edge, buffer_id, kind, first, last)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])`,
    [
      spans.map((s) => s.edge),
      spans.map((s) => s.bufferId),
      spans.map((s) => s.kind),
      spans.map((s) => s.first),
      spans.map((s) => s.last),
    ],
  );
  const buffers = new Map<string, SeqSpan>();
  for (const s of spans) if (s.start !== undefined) buffers.set(`${s.edge}\n${s.bufferId}`, s);
  if (buffers.size === 0) return;
  const list = [...buffers.values()];
  await client.query(
    `INSERT INTO edge_buffers (edge, buffer_id, start)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
     ON CONFLICT DO NOTHING`,
    [list.map((s) => s.edge), list.map((s) => s.bufferId), list.map((s) => s.start)],
  );
}

/** Unexplained ranges listed per buffer; the rest are counted. */
const LISTED_GAPS = 20;

export interface BufferCompleteness {
  /** null: batches of agents that do not name their buffer (counted, not accounted for). */
  bufferId: string | null;
  /** Where the account starts (null for bufferId null). */
  start: number | null;
  firstSeen: string | null;
  /** Sequence numbers received (each a reading stored, or dead-lettered by the collector with its reason). */
  readings: number;
  /** The highest sequence number known (received or reported dropped). */
  lastSeq: number | null;
  /** Gaps the edge explained, by reason, in readings. */
  explained: { droppedOldest: number };
  /** Readings sent and never received, not explained by the edge: should always be 0. */
  unexplained: number;
  /** The first unexplained ranges. */
  unexplainedRanges: [number, number][];
}

export interface EdgeCompleteness {
  edge: string;
  readings: number;
  explained: { droppedOldest: number };
  unexplained: number;
  /** Oldest buffer first. */
  buffers: BufferCompleteness[];
}

/** The account of one buffer from its ranges (pure). */
export function bufferAccount(
  start: number | null,
  received: readonly SeqRange[],
  dropped: readonly SeqRange[],
): Pick<BufferCompleteness, 'readings' | 'lastSeq' | 'explained' | 'unexplained' | 'unexplainedRanges'> {
  const recv = mergeRanges(received);
  const readings = count(recv);
  const covered = mergeRanges([...recv, ...mergeRanges(dropped)]);
  // Dropped numbers that arrived all the same (sent before a restart, then dropped) are no gap.
  const droppedOldest = count(covered) - readings;
  const lastSeq = covered.length > 0 ? (covered[covered.length - 1]?.[1] ?? null) : null;
  const holes: [number, number][] = [];
  let unexplained = 0;
  if (start !== null && lastSeq !== null) {
    let next = start;
    for (const [first, last] of covered) {
      if (last < next) continue;
      if (first > next) {
        unexplained += first - next;
        if (holes.length < LISTED_GAPS) holes.push([next, first - 1]);
      }
      next = last + 1;
    }
  }
  return { readings, lastSeq, explained: { droppedOldest }, unexplained, unexplainedRanges: holes };
}

interface RangeRow {
  edge: string;
  buffer_id: string;
  kind: Kind;
  first: string;
  last: string;
}
interface BufferRow {
  edge: string;
  buffer_id: string;
  start: string;
  first_seen: Date;
}

async function accountsOf(
  pool: pg.Pool | pg.ClientBase,
  edges: readonly string[],
): Promise<EdgeCompleteness[]> {
  const [ranges, buffers] = await Promise.all([
    pool.query<RangeRow>(
      'SELECT edge, buffer_id, kind, first, last FROM edge_seq_ranges WHERE edge = ANY($1::text[])',
      [edges],
    ),
    pool.query<BufferRow>(
      'SELECT edge, buffer_id, start, first_seen FROM edge_buffers WHERE edge = ANY($1::text[])',
      [edges],
    ),
  ]);
  /** Per edge, per buffer id: its ranges by kind. */
  const byEdge = new Map<string, Map<string, { received: SeqRange[]; dropped: SeqRange[] }>>();
  for (const r of ranges.rows) {
    let edge = byEdge.get(r.edge);
    if (!edge) {
      edge = new Map();
      byEdge.set(r.edge, edge);
    }
    let b = edge.get(r.buffer_id);
    if (!b) {
      b = { received: [], dropped: [] };
      edge.set(r.buffer_id, b);
    }
    b[r.kind].push([Number(r.first), Number(r.last)]);
  }
  const meta = new Map(buffers.rows.map((b) => [`${b.edge}\n${b.buffer_id}`, b]));
  return edges.map((edge) => {
    const list: BufferCompleteness[] = [];
    for (const [id, b] of byEdge.get(edge) ?? []) {
      const m = meta.get(`${edge}\n${id}`);
      const start = id === '' ? null : Number(m?.start ?? 1);
      list.push({
        bufferId: id === '' ? null : id,
        start,
        firstSeen: m ? m.first_seen.toISOString() : null,
        ...bufferAccount(start, b.received, b.dropped),
      });
    }
    list.sort((a, b) => (a.firstSeen ?? '').localeCompare(b.firstSeen ?? ''));
    return {
      edge,
      readings: list.reduce((n, b) => n + b.readings, 0),
      explained: { droppedOldest: list.reduce((n, b) => n + b.explained.droppedOldest, 0) },
      unexplained: list.reduce((n, b) => n + b.unexplained, 0),
      buffers: list,
    };
  });
}

/**
 * What the collector can prove about one edge's readings: how many arrived, the gaps the edge
 * explained (by reason) and the unexplained ones, per buffer file and in total. A gap can show for a
 * moment while a batch is resent after an uplink failure (a later batch arrived first); one that
 * stays is loss.
 */
export async function edgeCompleteness(
  pool: pg.Pool | pg.ClientBase,
  edgeId: string,
): Promise<EdgeCompleteness> {
  const [account] = await accountsOf(pool, [edgeId]);
  return (
    account ?? { edge: edgeId, readings: 0, explained: { droppedOldest: 0 }, unexplained: 0, buffers: [] }
  );
}

/** The per-edge gauge the account keeps up to date (see `createCloudMetrics`). */
export interface CompletenessGauge {
  set(labels: { edge: string }, value: number): void;
}

export interface CompletenessTracker {
  /** Called after a round's commit with its spans: their buffers are compacted and their edges' gauges refreshed. */
  committed(spans: readonly SeqSpan[]): void;
  close(): Promise<void>;
}

/**
 * Keeps `edge_seq_ranges` compact and the unexplained-gap gauge current. Both run beside ingest, at
 * most once per `everyMs` for the buffers and edges touched meanwhile, never in its transactions:
 * a round's rows are merged with the ranges they touch (the rows of a buffer below its newest ranges
 * are left alone), under a per-buffer advisory lock that another collector holding skips (the rows
 * stay for the next turn). A failure is logged and retried on the next turn; the raw rows are exact
 * in any case, and every reader merges what it reads.
 */
export function startCompleteness(
  pool: pg.Pool,
  deps: { log: Logger; gauge?: CompletenessGauge; everyMs?: number },
): CompletenessTracker {
  const everyMs = deps.everyMs ?? 1000;
  const buffers = new Map<string, { edge: string; bufferId: string }>();
  const edges = new Set<string>();
  let closed = false;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;

  async function compact(edge: string, bufferId: string): Promise<boolean> {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const lock = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_xact_lock(727007, hashtext($1)) AS ok',
        [`${edge}\n${bufferId}`],
      );
      if (!lock.rows[0]?.ok) {
        await client.query('ROLLBACK');
        return false;
      }
      // A compaction lost to a crash is no loss (the rows it merged are still there, unmerged), so its
      // commit need not wait for the disk, where ingest's commits wait.
      await client.query('SET LOCAL synchronous_commit = off');
      const taken = await client.query<{ kind: Kind; first: string; last: string }>(
        `DELETE FROM edge_seq_ranges WHERE edge = $1 AND buffer_id = $2 AND last >= (
           SELECT min(first) - 1 FROM edge_seq_ranges WHERE edge = $1 AND buffer_id = $2 AND NOT merged)
         RETURNING kind, first, last`,
        [edge, bufferId],
      );
      const rows: [Kind, number, number][] = [];
      for (const kind of ['received', 'dropped'] as const) {
        const mine = taken.rows
          .filter((r) => r.kind === kind)
          .map((r) => [Number(r.first), Number(r.last)] as const);
        for (const [first, last] of mergeRanges(mine)) rows.push([kind, first, last]);
      }
      if (rows.length > 0) {
        await client.query(
          `INSERT INTO edge_seq_ranges (edge, buffer_id, kind, first, last, merged)
           SELECT $1, $2, k, f, l, true FROM unnest($3::text[], $4::bigint[], $5::bigint[]) AS t(k, f, l)`,
          [edge, bufferId, rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])],
        );
      }
      await client.query('COMMIT');
      return true;
    } catch (err) {
      broken = err as Error;
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async function turn(): Promise<void> {
    const todo = [...buffers.entries()];
    buffers.clear();
    for (const [key, b] of todo) {
      if (closed) return;
      try {
        if (!(await compact(b.edge, b.bufferId))) buffers.set(key, b);
      } catch (err) {
        buffers.set(key, b);
        deps.log.warn(
          { err: (err as Error).message, edge: b.edge },
          'sequence ranges not compacted; retrying',
        );
      }
    }
    const gauge = deps.gauge;
    if (!gauge || edges.size === 0 || closed) return;
    const list = [...edges];
    edges.clear();
    try {
      for (const a of await accountsOf(pool, list)) gauge.set({ edge: a.edge }, a.unexplained);
    } catch (err) {
      for (const e of list) edges.add(e);
      deps.log.warn({ err: (err as Error).message }, 'completeness figures not refreshed; retrying');
    }
  }

  function schedule(): void {
    if (closed || timer || running) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = turn().finally(() => {
        running = undefined;
        if (buffers.size > 0 || edges.size > 0) schedule();
      });
    }, everyMs);
    timer.unref();
  }

  // The gauges of edges seen before this process started.
  void pool
    .query<{ edge: string }>('SELECT DISTINCT edge FROM edge_buffers')
    .then((r) => {
      for (const row of r.rows) edges.add(row.edge);
      schedule();
    })
    .catch((err: Error) => deps.log.warn({ err: err.message }, 'completeness figures not loaded'));

  return {
    committed(spans) {
      for (const s of spans) {
        buffers.set(`${s.edge}\n${s.bufferId}`, { edge: s.edge, bufferId: s.bufferId });
        edges.add(s.edge);
      }
      if (spans.length > 0) schedule();
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await running;
    },
  };
}
