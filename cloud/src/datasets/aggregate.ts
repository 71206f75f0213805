import type { Table } from 'apache-arrow';
import pg from 'pg';
import {
  DictColumn,
  DictValues,
  Float64Column,
  Int32Column,
  type NamedColumn,
  TimeColumn,
  tableOf,
} from './arrow-columns.js';
import { CF_COORDINATES, CF_COUNT, cfValueMetadata } from './cf.js';
import type { AggregateStat, DatasetDef } from './dataset-config.js';
import { type Bind, datasetWhere, inlineLiteral } from './dataset-filter.js';
import { windowStartOf } from './windows.js';

/**
 * Aggregated datasets: per station, sensor, variable and unit, one row per `every` interval inside
 * each window, one column per statistic. Computed by Postgres (a GROUP BY over the window's rows):
 * the collector holds only the result, a row per series and interval, and Postgres sorts and groups
 * within its `work_mem`, spilling to disk beyond it.
 *
 * The rules, in one place:
 * - A reading stored by several edges (same time and id) counts once.
 * - Numeric readings (`value` not null) make `mean`, `min`, `max`, `sum`, `first`, `last`.
 * - Text readings (`value` null, `text` set) count in `count` and make `first_text`/`last_text`
 *   (present when `first`/`last` are asked for); the numeric statistics skip them.
 * - `first`/`last` are the earliest/latest reading of the interval (ties: the lower/higher id).
 * - Quality flags: a reading carrying any of `exclude_flags` is left out of every statistic and counted
 *   in `excluded`; the other flags (`edge_time`, `unit_assumed`, ISS status, ...) describe a reading
 *   without making it wrong, so those readings are used and counted in `flagged`.
 * - `lat`/`lon`/`alt`: the latest position reported in the interval.
 * - Readings of one variable in two units are two series (never averaged together).
 * - Each interval is [time, time_end), aligned to the epoch like windows.
 */

export type AggregatedDef = DatasetDef & { aggregate: NonNullable<DatasetDef['aggregate']> };

/** Whether a dataset's files and items are per-interval statistics rather than raw readings. */
export function isAggregated(def: DatasetDef): def is AggregatedDef {
  return def.aggregate !== undefined;
}

/** The columns of an aggregated dataset, in file order (`id` is only in `aggregateSql`'s result). */
export function aggregateColumns(def: AggregatedDef): string[] {
  const stats = def.aggregate.stats;
  const text = [
    ...(stats.includes('first') ? ['first_text'] : []),
    ...(stats.includes('last') ? ['last_text'] : []),
  ];
  return [
    'time',
    'time_end',
    'station',
    'sensor',
    'variable',
    'unit',
    'lat',
    'lon',
    'alt',
    ...stats,
    ...text,
    'flagged',
    'excluded',
  ];
}

/** [start, end) widened to whole intervals: the intervals a time range touches, complete. */
export function alignToIntervals(def: AggregatedDef, start: Date, end: Date): { start: Date; end: Date } {
  const every = def.aggregate.every;
  const s = windowStartOf(start.getTime(), every);
  const e = windowStartOf(end.getTime() - 1, every) + every;
  return { start: new Date(s), end: new Date(Math.max(s, e)) };
}

const FIRST = 'time, id';
const LAST = 'time DESC, id DESC';

function statSql(stat: AggregateStat | 'first_text' | 'last_text'): string {
  const num = 'FILTER (WHERE used AND value IS NOT NULL)';
  const txt = 'FILTER (WHERE used AND value IS NULL AND text IS NOT NULL)';
  switch (stat) {
    case 'mean':
      return `avg(value) ${num}`;
    case 'min':
      return `min(value) ${num}`;
    case 'max':
      return `max(value) ${num}`;
    case 'sum':
      return `sum(value) ${num}`;
    case 'count':
      return '(count(*) FILTER (WHERE used AND (value IS NOT NULL OR text IS NOT NULL)))::int';
    case 'first':
      return `(array_agg(value ORDER BY ${FIRST}) ${num})[1]`;
    case 'last':
      return `(array_agg(value ORDER BY ${LAST}) ${num})[1]`;
    case 'first_text':
      return `(array_agg(text ORDER BY ${FIRST}) ${txt})[1]`;
    case 'last_text':
      return `(array_agg(text ORDER BY ${LAST}) ${txt})[1]`;
  }
}

/**
 * The SQL of an aggregated dataset's rows over the observations that `rawWhere` selects (a condition
 * on `observations`; give it whole intervals, see `alignToIntervals`, or the edge intervals are
 * partial). Rows come ordered by (time, id); `id` is a hex hash of the interval and the series,
 * unique within the dataset. The read API filters and pages on top of it; the builder writes it.
 */
export function aggregateSql(def: AggregatedDef, rawWhere: string): string {
  const every = `${def.aggregate.every} * interval '1 millisecond'`;
  const exclude = def.aggregate.excludeFlags;
  const used = exclude.length
    ? `NOT coalesce(quality && ARRAY[${exclude.map((f) => pg.escapeLiteral(f)).join(', ')}]::text[], false)`
    : 'true';
  const cols = aggregateColumns(def);
  const stats = cols.filter(
    (c) => (def.aggregate.stats as readonly string[]).includes(c) || c === 'first_text' || c === 'last_text',
  ) as (AggregateStat | 'first_text' | 'last_text')[];
  const pos = (col: string) =>
    `(array_agg(${col} ORDER BY ${LAST}) FILTER (WHERE lat IS NOT NULL AND lon IS NOT NULL))[1]`;
  return `SELECT md5(concat_ws(chr(31), extract(epoch FROM bucket)::text, station, coalesce(sensor, chr(30)), variable, unit)) AS id,
      bucket AS time, bucket + ${every} AS time_end, station, sensor, variable, unit,
      ${pos('lat')} AS lat, ${pos('lon')} AS lon, ${pos('alt')} AS alt,
      ${stats.map((s) => `${statSql(s)} AS ${s}`).join(',\n      ')},
      (count(*) FILTER (WHERE used AND cardinality(quality) > 0))::int AS flagged,
      (count(*) FILTER (WHERE NOT used))::int AS excluded
    FROM (
      SELECT DISTINCT ON (time, id) date_bin(${every}, time, timestamptz 'epoch') AS bucket, time, id,
             station, sensor, variable, unit, value, text, lat, lon, alt, quality, ${used} AS used
      FROM observations WHERE ${rawWhere}
      ORDER BY time, id, edge COLLATE "C") r
    GROUP BY bucket, station, sensor, variable, unit
    ORDER BY time, id`;
}

/**
 * A FROM item for the read API: the aggregated rows of `def` whose intervals touch [from, to] (either
 * end may be open), named `observations`, so a query written for raw observations filters, orders and
 * pages the same way on the columns both have (id, time, station, sensor, variable, unit, lat, lon,
 * alt). Every value goes through `bind`, which returns the placeholder of a bind parameter.
 */
export function aggregateFrom(
  def: AggregatedDef,
  range: { from?: Date | undefined; to?: Date | undefined },
  bind: Bind,
): string {
  const every = def.aggregate.every;
  const where = datasetWhere(def, bind, {
    from: range.from && new Date(windowStartOf(range.from.getTime(), every)),
    to: range.to && new Date(windowStartOf(range.to.getTime(), every) + every),
  });
  return `(${aggregateSql(def, where)}) AS observations`;
}

interface AggRow {
  time: Date;
  time_end: Date;
  station: string;
  sensor: string | null;
  variable: string;
  unit: string;
  lat: number | null;
  lon: number | null;
  alt: number | null;
  flagged: number;
  excluded: number;
  [stat: string]: unknown;
}

/** Rows fetched per round trip: bounds what the collector holds besides the columns being built. */
const FETCH_ROWS = 5000;

const CELL_METHODS: Partial<Record<AggregateStat, string>> = {
  mean: 'mean',
  min: 'minimum',
  max: 'maximum',
  sum: 'sum',
};

/**
 * Builds one window of an aggregated dataset into an Arrow table, with CF field metadata: the
 * statistics of a variable carry its standard name and units, `cell_methods` says which statistic.
 */
export async function readAggregatedWindow(
  pool: pg.Pool,
  def: AggregatedDef,
  start: Date,
  end: Date,
  metadata: Map<string, string>,
): Promise<Table> {
  const names = aggregateColumns(def);
  const dict = (id: number) => new DictColumn(new DictValues(id));
  const times = { time: new TimeColumn(), time_end: new TimeColumn() };
  const strings = new Map<string, DictColumn>(
    ['station', 'sensor', 'variable', 'unit', 'first_text', 'last_text'].map((n, i) => [n, dict(i)]),
  );
  const floats = new Map<string, Float64Column>();
  const ints = new Map<string, Int32Column>();
  for (const n of names) {
    if (n === 'count' || n === 'flagged' || n === 'excluded') ints.set(n, new Int32Column());
    else if (!(n in times) && !strings.has(n)) floats.set(n, new Float64Column());
  }
  const pairs = new Set<string>();
  const range = alignToIntervals(def, start, end);
  const sql = aggregateSql(def, datasetWhere(def, inlineLiteral, { from: range.start, to: range.end }));
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(`DECLARE agg NO SCROLL CURSOR FOR ${sql}`);
    for (;;) {
      const r = await client.query<AggRow>(`FETCH ${FETCH_ROWS} FROM agg`);
      for (const row of r.rows) {
        times.time.push(row.time.getTime());
        times.time_end.push(row.time_end.getTime());
        for (const [n, c] of strings) if (names.includes(n)) c.pushString((row[n] as string | null) ?? null);
        for (const [n, c] of floats) {
          const v = row[n] as number | null;
          if (v === null) c.pushNull();
          else c.push(v);
        }
        for (const [n, c] of ints) c.push(row[n] as number);
        pairs.add(`${row.variable}\u001f${row.unit}`);
      }
      if (r.rows.length < FETCH_ROWS) break;
    }
    await client.query('COMMIT');
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    client.release(broken);
  }
  const variableUnits = [...pairs].map((p) => p.split('\u001f') as [string, string]);
  const interval = `(interval: ${def.aggregate.every / 1000} s)`;
  const columns: NamedColumn[] = names.map((n) => {
    if (n === 'time')
      return { name: n, data: times.time.data(), nullable: false, metadata: CF_COORDINATES.time };
    if (n === 'time_end') return { name: n, data: times.time_end.data(), nullable: false };
    const s = strings.get(n);
    if (s) return { name: n, data: s.data(), nullable: n !== 'station' && n !== 'variable' && n !== 'unit' };
    const i = ints.get(n);
    if (i) return { name: n, data: i.data(), nullable: false, metadata: CF_COUNT };
    const f = floats.get(n) as Float64Column;
    const coordinate = CF_COORDINATES[n];
    if (coordinate) return { name: n, data: f.data(), nullable: true, metadata: coordinate };
    const method = CELL_METHODS[n as AggregateStat];
    return {
      name: n,
      data: f.data(),
      nullable: true,
      metadata: cfValueMetadata(variableUnits, method ? `time: ${method} ${interval}` : undefined),
    };
  });
  return tableOf([columns], metadata);
}
