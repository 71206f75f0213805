import type { Table } from 'apache-arrow';
import type pg from 'pg';
import {
  type AggregatedDef,
  aggregateColumns,
  aggregateFrom,
  isAggregated,
  readAggregatedWindow,
} from '../datasets/aggregate.js';
import type { DatasetDef } from '../datasets/dataset-config.js';
import { type Bind, bindTo, datasetConditions } from '../datasets/dataset-filter.js';
import { readWindow } from '../datasets/window-reader.js';
import { windowStartOf } from '../datasets/windows.js';
import { HttpError } from '../http-api.js';
import { API_COLUMNS } from '../ingest/observation-fields.js';
import { csv, type ItemRow, itemsCsv } from './formats.js';
import { encodeCursor, featureId, parseFeatureId } from './query-params.js';

/** The filter of an items, position or location query; every value ends up as a bind parameter. */
export interface ItemQuery {
  bbox?: [number, number, number, number];
  from?: Date;
  to?: Date;
  variables?: string[];
  near?: { lon: number; lat: number; km: number };
  after?: { time: Date; id: string; edge: string };
  /** One feature by its key. */
  key?: { time: Date; id: string; edge: string };
  station?: string;
  limit: number;
}

/** Conditions on the columns raw and aggregated rows share (station, variable, lat, lon). */
function sharedConditions(q: Omit<ItemQuery, 'limit'>, p: Bind): string[] {
  const where: string[] = [];
  if (q.variables) where.push(`variable = ANY(${p(q.variables)}::text[])`);
  if (q.station !== undefined) where.push(`station = ${p(q.station)}`);
  if (q.bbox) {
    where.push(
      `lon BETWEEN ${p(q.bbox[0])} AND ${p(q.bbox[2])} AND lat BETWEEN ${p(q.bbox[1])} AND ${p(q.bbox[3])}`,
    );
  }
  if (q.near) {
    // A box around the point narrows the rows, then the great-circle distance decides.
    const dLat = q.near.km / 111.2;
    const dLon = dLat / Math.max(0.01, Math.cos((q.near.lat * Math.PI) / 180));
    const lon = p(q.near.lon);
    const lat = p(q.near.lat);
    where.push(
      `lat BETWEEN ${lat}::float8 - ${p(dLat)} AND ${lat}::float8 + ${p(dLat)}` +
        ` AND lon BETWEEN ${lon}::float8 - ${p(dLon)} AND ${lon}::float8 + ${p(dLon)}` +
        ` AND 2 * 6371.0088 * asin(sqrt(power(sin(radians(lat - ${lat}::float8) / 2), 2) +` +
        ` cos(radians(${lat}::float8)) * cos(radians(lat)) * power(sin(radians(lon - ${lon}::float8) / 2), 2)))` +
        ` <= ${p(q.near.km)}`,
    );
  }
  return where;
}

/**
 * The WHERE clause (or '') of a dataset's raw observations matching `q`; its values are appended to
 * `values`. Aggregated datasets select their raw rows with it too (stations, variables, units).
 */
export function itemsWhere(def: DatasetDef, q: Omit<ItemQuery, 'limit'>, values: unknown[]): string {
  const p = bindTo(values);
  const where = datasetConditions(def, p, { from: q.from, to: q.to, toIncluded: true });
  where.push(...sharedConditions(q, p));
  if (q.key) where.push(`time = ${p(q.key.time)} AND id = ${p(q.key.id)} AND edge = ${p(q.key.edge)}`);
  if (q.after) {
    where.push(
      `(time, id, edge COLLATE "C") > (${p(q.after.time)}, ${p(q.after.id)}::text COLLATE "C", ${p(q.after.edge)}::text)`,
    );
  }
  return where.length ? `WHERE ${where.join(' AND ')}` : '';
}

/** The SQL of a dataset's raw items, ordered by (time, id, edge), parameterised throughout. */
export function itemsSql(def: DatasetDef, q: ItemQuery): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const where = itemsWhere(def, q, values);
  values.push(q.limit + 1);
  const text = `SELECT ${API_COLUMNS} FROM observations ${where}
    ORDER BY time, id, edge COLLATE "C" LIMIT $${values.length}`;
  return { text, values };
}

/**
 * The SQL of an aggregated dataset's items: its intervals touching the query's time range (see
 * aggregate.ts), filtered and paged on the columns they share with raw rows, ordered by (time, id).
 */
export function aggregatedItemsSql(def: AggregatedDef, q: ItemQuery): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const p = bindTo(values);
  // Pages after a cursor, and one feature, need only the intervals from that time on.
  const start = q.key?.time ?? q.after?.time;
  const from = start && (!q.from || start > q.from) ? start : q.from;
  const to = q.key?.time ?? q.to;
  const source = aggregateFrom(def, { from, to }, p);
  const where = sharedConditions(q, p);
  if (q.key) where.push(`time = ${p(q.key.time)} AND id = ${p(q.key.id)}`);
  if (q.after)
    where.push(`(time, id COLLATE "C") > (${p(q.after.time)}, ${p(q.after.id)}::text COLLATE "C")`);
  const text = `SELECT * FROM ${source} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
    ORDER BY time, id COLLATE "C" LIMIT ${p(q.limit + 1)}`;
  return { text, values };
}

/** A row of either kind: what paging, ids and locations need of it. */
export interface SourceRow {
  id: string;
  time: Date;
  station: string;
  sensor: string | null;
  variable: string;
  unit: string;
  lat: number | null;
  lon: number | null;
  alt: number | null;
}

/** How the read API reads, names and encodes the rows of one kind of dataset. */
export interface RowSource {
  rows(q: ItemQuery): Promise<{ page: SourceRow[]; more: boolean }>;
  /** The feature id of a row, and the key of a feature id (400 when it is not one of this kind). */
  featureId(r: SourceRow): string;
  key(text: string): NonNullable<ItemQuery['key']>;
  cursor(r: SourceRow): string;
  properties(r: SourceRow): Record<string, unknown>;
  csv(rows: readonly SourceRow[]): string;
  /** Rows as numeric series for CoverageJSON: one per statistic of an aggregated dataset. */
  series(rows: readonly SourceRow[]): ItemRow[];
  /** [from, end) of the dataset as an Arrow table, for GeoParquet. */
  table(def: DatasetDef, from: Date, end: Date, metadata: Map<string, string>): Promise<Table>;
}

async function page(pool: pg.Pool, sql: { text: string; values: unknown[] }, limit: number) {
  const rows = (await pool.query<SourceRow>(sql.text, sql.values)).rows;
  const more = rows.length > limit;
  return { page: more ? rows.slice(0, limit) : rows, more };
}

function rawSource(pool: pg.Pool, def: DatasetDef): RowSource {
  const raw = (r: SourceRow) => r as ItemRow;
  const idOf = (r: SourceRow) => featureId(r.time.getTime(), r.id, raw(r).edge);
  return {
    rows: (q) => page(pool, itemsSql(def, q), q.limit),
    featureId: idOf,
    key: (text) => {
      const k = parseFeatureId(text);
      if (k.id.length !== 64 || k.edge === '') {
        throw new HttpError(400, 'featureId: expected <time ms>_<64 hex>_<edge>, as the items give in "id"');
      }
      return k;
    },
    cursor: (r) => encodeCursor(r.time.getTime(), r.id, raw(r).edge),
    properties: (row) => {
      const r = raw(row);
      return {
        observation: r.id,
        time: r.time.toISOString(),
        station: r.station,
        sensor: r.sensor,
        variable: r.variable,
        value: r.value,
        text: r.text,
        unit: r.unit,
        alt: r.alt,
        quality: r.quality,
        source: r.source,
        edge: r.edge,
      };
    },
    csv: (rows) => itemsCsv(rows as ItemRow[], idOf),
    series: (rows) => rows as ItemRow[],
    table: (d, from, end, metadata) => readWindow(pool, d, from, end, metadata),
  };
}

/**
 * A page of an aggregated dataset, computed span by span from where it starts: each query aggregates
 * only the raw rows of its span (one window, then twice as long each time the page is not full, so
 * a few queries fill any page and cross gaps), so a page costs about what its own intervals cost,
 * not everything after it. Spans start and end on window boundaries, which `every` divides: no
 * interval is split.
 */
async function aggregatedPage(
  pool: pg.Pool,
  def: AggregatedDef,
  q: ItemQuery,
): Promise<{ page: SourceRow[]; more: boolean }> {
  const values: unknown[] = [];
  const where = itemsWhere(def, { ...q, after: undefined, bbox: undefined, near: undefined }, values);
  const b = (
    await pool.query<{ lo: Date | null; hi: Date | null }>(
      `SELECT min(time) AS lo, max(time) AS hi FROM observations ${where}`,
      values,
    )
  ).rows[0];
  if (!b?.lo || !b.hi) return { page: [], more: false };
  const first = Math.max(b.lo.getTime(), q.after?.time.getTime() ?? -Infinity);
  const last = b.hi.getTime();
  const rows: SourceRow[] = [];
  let span = def.window;
  for (let start = windowStartOf(first, def.window); start <= last && rows.length <= q.limit; ) {
    const end = start + span;
    const chunk = await page(
      pool,
      aggregatedItemsSql(def, {
        ...q,
        from: new Date(Math.max(start, q.from?.getTime() ?? -Infinity)),
        to: new Date(Math.min(end - 1, q.to?.getTime() ?? Infinity)),
        limit: q.limit - rows.length,
      }),
      q.limit - rows.length,
    );
    rows.push(...chunk.page);
    if (chunk.more) return { page: rows, more: true };
    start = end;
    span *= 2;
  }
  return { page: rows, more: false };
}

function aggregatedSource(pool: pg.Pool, def: AggregatedDef): RowSource {
  const columns = aggregateColumns(def);
  // Statistics and their text companions, in file order: what a row carries beyond its series.
  const SERIES = ['time', 'time_end', 'station', 'sensor', 'variable', 'unit', 'lat', 'lon', 'alt'];
  const values = columns.filter((c) => !SERIES.includes(c));
  const idOf = (r: SourceRow) => featureId(r.time.getTime(), r.id);
  const cell = (r: SourceRow, c: string) => {
    const v = (r as unknown as Record<string, unknown>)[c];
    return v instanceof Date ? v.toISOString() : v;
  };
  return {
    rows: (q) => (q.key ? page(pool, aggregatedItemsSql(def, q), q.limit) : aggregatedPage(pool, def, q)),
    featureId: idOf,
    key: (text) => {
      const k = parseFeatureId(text);
      if (k.id.length !== 32 || k.edge !== '') {
        throw new HttpError(400, 'featureId: expected <time ms>_<32 hex>, as the items give in "id"');
      }
      return k;
    },
    cursor: (r) => encodeCursor(r.time.getTime(), r.id, ''),
    properties: (r) => ({
      time: r.time.toISOString(),
      time_end: cell(r, 'time_end'),
      station: r.station,
      sensor: r.sensor,
      variable: r.variable,
      unit: r.unit,
      alt: r.alt,
      ...Object.fromEntries(values.map((c) => [c, cell(r, c)])),
    }),
    csv: (rows) =>
      csv(
        ['id', 'time', 'time_end', 'station', 'sensor', 'variable', 'unit', 'lon', 'lat', 'alt', ...values],
        rows.map((r) => [
          idOf(r),
          r.time,
          cell(r, 'time_end'),
          r.station,
          r.sensor,
          r.variable,
          r.unit,
          r.lon,
          r.lat,
          r.alt,
          ...values.map((c) => cell(r, c)),
        ]),
      ),
    series: (rows) =>
      rows.flatMap((r) =>
        def.aggregate.stats.map((stat) => ({
          ...(r as ItemRow),
          variable: `${r.variable}_${stat}`,
          value: (cell(r, stat) as number | null) ?? null,
          unit: stat === 'count' ? '1' : r.unit,
        })),
      ),
    table: (d, from, end, metadata) => readAggregatedWindow(pool, d as AggregatedDef, from, end, metadata),
  };
}

/** The row source of a dataset: raw readings, or per-interval statistics when it aggregates. */
export function rowSourceOf(pool: pg.Pool, def: DatasetDef): RowSource {
  return isAggregated(def) ? aggregatedSource(pool, def) : rawSource(pool, def);
}
