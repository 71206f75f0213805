import { isTraceId, traceIdOfTraceparent } from '@fieldbeam/protocol';
import type pg from 'pg';
import { type DatasetDef, datasetMayMatch } from '../datasets/dataset-config.js';

/**
 * The path of readings from the edge to the datasets, put together from what the collector keeps:
 * the rows (observations, with their trace-id and ingest time), the stored messages
 * (`ingest_batches`: edge buffer rows, JetStream sequence, round, trace-ids), the window audit trail
 * (`window_marks`, which name the message) and the builds (`dataset_builds`, `dataset_versions`).
 * Which versions contain a reading is derived, not recorded per reading: a version of a window the
 * reading's message marked contains it when its build started after that mark (the mark follows the
 * commit of the rows, and a build reads only after it starts).
 */

export interface TracedReading {
  id: string;
  edge: string;
  source: string;
  station: string;
  sensor: string | null;
  variable: string;
  value: number | null;
  text: string | null;
  unit: string;
  time: string;
  received: string;
  ingested: string;
  trace: string | null;
  /** The topic it came on, as far as the edge's heartbeat tells (its sensors' topic filters). */
  topic: string | null;
  /** JetStream sequences of the stored messages that carried it (normally one). */
  batches: number[];
}

export interface TracedBatch {
  streamSeq: number;
  edge: string;
  bufferId: string;
  /** The edge buffer's rows the message carried. */
  rows: [number, number];
  observations: number;
  inserted: number;
  /** The ingest transaction that committed it. */
  round: string;
  ingested: string;
}

export interface TracedWindow {
  dataset: string;
  windowStart: string;
  windowEnd: string;
  /** When the message's mark made the window dirty. */
  markedAt: string;
  batch: number;
  readings: number;
}

export interface TracedVersion {
  dataset: string;
  windowStart: string;
  version: number;
  builtAt: string;
  buildStarted: string | null;
  provisional: boolean;
  rows: number;
  key: string;
}

export interface TracePath {
  trace: string | null;
  readings: TracedReading[];
  batches: TracedBatch[];
  windows: TracedWindow[];
  versions: TracedVersion[];
}

/** A trace-id as given on the command line: 32 hex digits (any case) or a whole traceparent. */
export function parseTraceArgument(text: string): string | undefined {
  const t = text.trim().toLowerCase();
  if (isTraceId(t)) return t;
  return traceIdOfTraceparent(t);
}

const iso = (d: Date) => d.toISOString();

interface ReadingRow {
  id: string;
  edge: string;
  source: string;
  station: string;
  sensor: string | null;
  variable: string;
  value: number | null;
  text: string | null;
  unit: string;
  time: Date;
  received: Date;
  ingested: Date;
  trace_id: string | null;
}

const READING_COLUMNS =
  'id, edge, source, station, sensor, variable, value, text, unit, time, received, ingested, trace_id';

interface BatchRow {
  stream_seq: string;
  edge: string;
  buffer_id: string;
  seq_first: string;
  seq_last: string;
  observations: number;
  inserted: number;
  round: string;
  ingested: Date;
  time_min: Date;
  time_max: Date;
}

const toBatch = (b: BatchRow): TracedBatch => ({
  streamSeq: Number(b.stream_seq),
  edge: b.edge,
  bufferId: b.buffer_id,
  rows: [Number(b.seq_first), Number(b.seq_last)],
  observations: b.observations,
  inserted: b.inserted,
  round: b.round,
  ingested: iso(b.ingested),
});

/** At most this many readings of one trace are listed (a trace is one message: normally a handful). */
const MAX_READINGS = 1000;

/** The path of every reading of a trace; empty when the collector has none of it. */
export async function tracePathOfTrace(
  pool: pg.Pool,
  defs: readonly DatasetDef[],
  trace: string,
): Promise<TracePath> {
  const batches = (
    await pool.query<BatchRow>(
      'SELECT * FROM ingest_batches WHERE traces @> ARRAY[$1]::text[] ORDER BY stream_seq LIMIT 100',
      [trace],
    )
  ).rows;
  const byKey = new Map<string, ReadingRow>();
  for (const b of batches) {
    // The rows' key leads with time: the message's time range and edge find them without a scan.
    const r = await pool.query<ReadingRow>(
      `SELECT ${READING_COLUMNS} FROM observations
       WHERE time >= $1 AND time <= $2 AND edge = $3 AND trace_id = $4 ORDER BY time, id LIMIT $5`,
      [b.time_min, b.time_max, b.edge, trace, MAX_READINGS],
    );
    for (const row of r.rows) byKey.set(`${row.id}\n${row.edge}`, row);
  }
  return assemble(pool, defs, trace, [...byKey.values()], batches);
}

/** The path of one reading, by its observation id (every edge's row of that id). */
export async function tracePathOfReading(
  pool: pg.Pool,
  defs: readonly DatasetDef[],
  id: string,
): Promise<TracePath> {
  // The key leads with time, which an id alone does not give: this reads every partition's key.
  const readings = (
    await pool.query<ReadingRow>(`SELECT ${READING_COLUMNS} FROM observations WHERE id = $1 LIMIT 10`, [id])
  ).rows;
  // The messages of its edge committed in its round (the same ingest time, compared in the database:
  // a JavaScript Date would cut its microseconds) whose time range holds it.
  const batches = (
    await pool.query<BatchRow>(
      `SELECT DISTINCT b.* FROM observations o
       JOIN ingest_batches b ON b.edge = o.edge AND b.ingested = o.ingested
         AND o.time BETWEEN b.time_min AND b.time_max
         AND (o.trace_id IS NULL OR b.traces @> ARRAY[o.trace_id])
       WHERE o.id = $1 ORDER BY b.stream_seq`,
      [id],
    )
  ).rows;
  const trace = readings.find((r) => r.trace_id !== null)?.trace_id ?? null;
  return assemble(pool, defs, trace, readings, batches);
}

async function assemble(
  pool: pg.Pool,
  defs: readonly DatasetDef[],
  trace: string | null,
  rows: ReadingRow[],
  batchRows: BatchRow[],
): Promise<TracePath> {
  const batches = [...new Map(batchRows.map((b) => [b.stream_seq, b])).values()];
  // A reading was carried by the message of its edge committed in its round (same ingest time).
  const carriers = (r: ReadingRow) =>
    batches.filter(
      (b) =>
        b.edge === r.edge &&
        b.ingested.getTime() === r.ingested.getTime() &&
        b.time_min <= r.time &&
        b.time_max >= r.time,
    );
  const topics = await edgeTopics(
    pool,
    rows.map((r) => r.edge),
  );
  const readings: TracedReading[] = rows.map((r) => ({
    id: r.id,
    edge: r.edge,
    source: r.source,
    station: r.station,
    sensor: r.sensor,
    variable: r.variable,
    value: r.value,
    text: r.text,
    unit: r.unit,
    time: iso(r.time),
    received: iso(r.received),
    ingested: iso(r.ingested),
    trace: r.trace_id,
    topic: topicOf(r, topics.get(r.edge) ?? []),
    batches: carriers(r).map((b) => Number(b.stream_seq)),
  }));

  const marks =
    batches.length === 0
      ? []
      : (
          await pool.query<{
            dataset: string;
            window_start: Date;
            window_end: Date | null;
            at: Date;
            batch: string;
          }>(
            `SELECT m.dataset, m.window_start, w.window_end, m.at, m.batch FROM window_marks m
             LEFT JOIN dataset_windows w USING (dataset, window_start)
             WHERE m.batch = ANY($1::text[]) ORDER BY m.dataset, m.window_start`,
            [batches.map((b) => `FB_OBS:${b.stream_seq}`)],
          )
        ).rows;
  const defsByName = new Map(defs.map((d) => [d.name, d]));
  const windows: TracedWindow[] = [];
  for (const m of marks) {
    const def = defsByName.get(m.dataset);
    const end = m.window_end ?? (def ? new Date(m.window_start.getTime() + def.window) : undefined);
    if (end === undefined) continue;
    const seq = Number(m.batch.slice('FB_OBS:'.length));
    const inside = readings.filter((r, i) => {
      const row = rows[i] as ReadingRow;
      return (
        r.batches.includes(seq) &&
        row.time >= m.window_start &&
        row.time < end &&
        // With the dataset's definition at hand, only readings it selects; a window of a dataset no
        // longer configured counts by time alone.
        (!def || datasetMayMatch(def, { source: [r.source], stations: [r.station], variables: [r.variable] }))
      );
    });
    if (inside.length === 0) continue;
    windows.push({
      dataset: m.dataset,
      windowStart: iso(m.window_start),
      windowEnd: iso(end),
      markedAt: iso(m.at),
      batch: seq,
      readings: inside.length,
    });
  }

  const versions: TracedVersion[] = [];
  const seen = new Set<string>();
  for (const w of windows) {
    const key = `${w.dataset}\n${w.windowStart}`;
    if (seen.has(key)) continue;
    seen.add(key);
    // The earliest mark of this window by the reading's messages: builds started after it read the rows.
    const markedAt = windows
      .filter((x) => x.dataset === w.dataset && x.windowStart === w.windowStart)
      .map((x) => x.markedAt)
      .sort()[0];
    const r = await pool.query<{
      version: number;
      built_at: Date;
      started_at: Date | null;
      provisional: boolean;
      rows: string;
      key: string;
    }>(
      `SELECT v.version, v.built_at, b.started_at, v.provisional, v.rows, v.key
       FROM dataset_versions v
       LEFT JOIN dataset_builds b ON b.dataset = v.dataset AND b.window_start = v.window_start AND b.version = v.version
       WHERE v.dataset = $1 AND v.window_start = $2 AND coalesce(b.started_at, v.built_at) > $3
       ORDER BY v.version`,
      [w.dataset, w.windowStart, markedAt],
    );
    for (const v of r.rows) {
      versions.push({
        dataset: w.dataset,
        windowStart: w.windowStart,
        version: v.version,
        builtAt: iso(v.built_at),
        buildStarted: v.started_at ? iso(v.started_at) : null,
        provisional: v.provisional,
        rows: Number(v.rows),
        key: v.key,
      });
    }
  }
  return { trace, readings, batches: batches.map(toBatch), windows, versions };
}

interface SensorTopic {
  topic: string;
  station?: string;
}

/** The sensors' topic filters each edge last reported in its heartbeat (fleet registry). */
async function edgeTopics(pool: pg.Pool, edges: string[]): Promise<Map<string, SensorTopic[]>> {
  const out = new Map<string, SensorTopic[]>();
  if (edges.length === 0) return out;
  const r = await pool.query<{ edge: string; sensors: unknown }>(
    `SELECT edge, status->'sensors' AS sensors FROM fleet_edges WHERE edge = ANY($1::text[])`,
    [[...new Set(edges)]],
  );
  for (const row of r.rows) {
    if (!Array.isArray(row.sensors)) continue;
    out.set(
      row.edge,
      row.sensors.filter(
        (s): s is SensorTopic => typeof s === 'object' && s !== null && typeof s.topic === 'string',
      ),
    );
  }
  return out;
}

/**
 * The topic of a reading from its edge's sensors: the filter of the sensor of its station, with a
 * `+station` level written as the station. ISS readings name their ISSLIVE item. Null when the
 * heartbeat does not tell (no fleet registry row, or several sensors could have given it).
 */
export function topicOf(
  r: { source: string; station: string; variable: string },
  sensors: readonly SensorTopic[],
): string | null {
  if (r.source === 'isslive') return `ISSLIVE ${r.variable.replace(/^iss:/, '')}`;
  const candidates = new Set<string>();
  for (const s of sensors) {
    const levels = s.topic.split('/');
    const captures = levels.includes('+station');
    if (s.station !== undefined && s.station !== r.station) continue;
    if (s.station === undefined && !captures) continue;
    candidates.add(levels.map((l) => (l === '+station' ? r.station : l)).join('/'));
  }
  return candidates.size === 1 ? ([...candidates][0] as string) : null;
}
