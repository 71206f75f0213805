import {
  type DataType,
  Field,
  Float64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  TimestampMillisecond,
} from 'apache-arrow';
import type pg from 'pg';
import { type FieldType, WINDOW_FIELDS } from '../ingest/observation-fields.js';
import { isAggregated, readAggregatedWindow } from './aggregate.js';
import {
  DictColumn,
  DictValues,
  Float64Column,
  type NamedColumn,
  StringListColumn,
  sortOrder,
  TimeColumn,
} from './arrow-columns.js';
import { BBOX_METADATA, type Bbox, bboxOf, unionBbox } from './bbox.js';
import { CF_COORDINATES, cfValueMetadata } from './cf.js';
import { CopyOut } from './copy-out.js';
import type { DatasetDef } from './dataset-config.js';
import { datasetWhere, inlineLiteral } from './dataset-filter.js';

/** PG's binary timestamps count microseconds from 2000-01-01 UTC. */
const PG_EPOCH_MS = 946_684_800_000;
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** The columns of a dataset window, in file order (the field table's window fields). */
export const WINDOW_COLUMNS: readonly string[] = WINDOW_FIELDS.map((f) => f.name);

/** How a window column is built from its binary COPY field: by the field's Postgres type. */
enum Kind {
  Time,
  Dict,
  Float,
  List,
}
const KIND: Record<FieldType, Kind> = {
  timestamptz: Kind.Time,
  text: Kind.Dict,
  float8: Kind.Float,
  'text[]': Kind.List,
};
const KINDS: readonly Kind[] = WINDOW_FIELDS.map((f) => KIND[f.type]);
type WindowColumn = TimeColumn | DictColumn | Float64Column | StringListColumn;

/** The dictionaries of the string columns (by field name), shared by every slice of one window. */
class WindowDicts {
  readonly byName = new Map<string, DictValues>();
  constructor() {
    for (const f of WINDOW_FIELDS)
      if (KIND[f.type] === Kind.Dict) this.byName.set(f.name, new DictValues(this.byName.size));
  }
  of(name: string): DictValues {
    const d = this.byName.get(name);
    if (!d) throw new Error(`no dictionary for ${name}`);
    return d;
  }
}

/** Decodes COPY ... (FORMAT binary) of WINDOW_COLUMNS straight into Arrow column builders. */
class WindowDecoder {
  /** One builder per window field, in WINDOW_FIELDS order. */
  readonly cols: WindowColumn[];
  readonly time: TimeColumn;
  readonly variable: DictColumn;
  readonly unit: DictColumn;
  constructor(d: WindowDicts) {
    this.cols = WINDOW_FIELDS.map((f) => {
      switch (KIND[f.type]) {
        case Kind.Time:
          return new TimeColumn();
        case Kind.Dict:
          return new DictColumn(d.of(f.name));
        case Kind.Float:
          return new Float64Column();
        default:
          return new StringListColumn();
      }
    });
    this.time = this.col('time') as TimeColumn;
    this.variable = this.col('variable') as DictColumn;
    this.unit = this.col('unit') as DictColumn;
  }
  private col(name: string): WindowColumn {
    return this.cols[WINDOW_COLUMNS.indexOf(name)] as WindowColumn;
  }
  private headerDone = false;
  private ended = false;
  rows = 0;

  /**
   * Takes one CopyData message's body, `b[start, end)`: a row (the first one after the stream's
   * header; the last message is the trailer).
   */
  row(b: Buffer, dv: DataView, start: number, end: number): void {
    let p = start;
    if (!this.headerDone) {
      if (end - p < 19 || !b.subarray(p, p + 11).equals(SIGNATURE))
        throw new Error('not a binary COPY stream');
      p += 19 + dv.getInt32(p + 15);
      this.headerDone = true;
      if (p >= end) return;
    }
    const fields = dv.getInt16(p);
    if (fields === -1) {
      this.ended = true;
      return;
    }
    if (fields !== WINDOW_COLUMNS.length) {
      throw new Error(`expected ${WINDOW_COLUMNS.length} fields, got ${fields}`);
    }
    const q = this.tuple(b, dv, p + 2);
    if (q !== end) throw new Error(`a COPY row of ${end - p} bytes decoded as ${q - p}`);
    this.rows++;
  }

  private tuple(b: Buffer, dv: DataView, start: number): number {
    let p = start;
    const cols = this.cols;
    for (let i = 0; i < KINDS.length; i++) {
      const len = dv.getInt32(p);
      p += 4;
      const kind = KINDS[i];
      if (len < 0) {
        if (kind === Kind.Time) throw new Error(`${WINDOW_COLUMNS[i]} is null`);
        (cols[i] as DictColumn | Float64Column | StringListColumn).pushNull();
        continue;
      }
      if (kind === Kind.Dict) (cols[i] as DictColumn).push(b, p, len);
      else if (kind === Kind.Float) (cols[i] as Float64Column).push(dv.getFloat64(p));
      else if (kind === Kind.Time) {
        const us = dv.getInt32(p) * 4294967296 + dv.getUint32(p + 4);
        (cols[i] as TimeColumn).push(Math.floor(us / 1000) + PG_EPOCH_MS);
      } else {
        // Binary array: ndim, has-null flag, element oid, then (size, lower bound) per dim, then items.
        const list = cols[i] as StringListColumn;
        list.begin();
        if (dv.getInt32(p) === 1) {
          const n = dv.getInt32(p + 12);
          let q = p + 20;
          for (let k = 0; k < n; k++) {
            const l = dv.getInt32(q);
            q += 4;
            if (l >= 0) {
              list.item(b, q, l);
              q += l;
            }
          }
        }
      }
      p += len;
    }
    return p;
  }

  /** Puts the rows in time order (Postgres sends them in heap order). */
  sortByTime(): void {
    const perm = sortOrder(this.time.values());
    if (!perm) return;
    for (const c of this.cols) c.permute(perm);
  }

  /** The Arrow type of each column, in WINDOW_FIELDS order. */
  types(): DataType[] {
    return this.cols.map((c) =>
      c instanceof TimeColumn
        ? new TimestampMillisecond('UTC')
        : c instanceof DictColumn
          ? c.dict.type()
          : c instanceof Float64Column
            ? new Float64()
            : c.type(),
    );
  }

  columns(): NamedColumn[] {
    if (!this.ended && this.headerDone) throw new Error('COPY stream ended without its trailer');
    return WINDOW_FIELDS.map((f, i) => ({
      name: f.name,
      data: (this.cols[i] as WindowColumn).data(),
      nullable: f.nullable,
    }));
  }
}

async function readSlice(pool: pg.Pool, def: DatasetDef, start: Date, end: Date, decoder: WindowDecoder) {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    // No ORDER BY, and no plain index scan: Postgres reads the window in heap order (a bitmap or
    // sequential scan) and Node sorts by time afterwards. Walking the (time, id) index fetches rows
    // page by random page when several edges wrote them at once (20 s for a million rows here), and
    // sorting whole tuples in Postgres costs more than sorting keys in Node.
    const sql = `COPY (SELECT ${WINDOW_COLUMNS.join(', ')} FROM observations WHERE ${datasetWhere(def, inlineLiteral, { from: start, to: end })})
                 TO STDOUT (FORMAT binary)`;
    await client.query('BEGIN READ ONLY');
    await client.query('SET LOCAL enable_indexscan = off');
    // Nor a sequential scan: a slice is a small part of the window, and a planner that takes the
    // whole table for one would read it once per slice (a window alone in its partition, say).
    await client.query('SET LOCAL enable_seqscan = off');
    const copy = new CopyOut(sql, (b, dv, start, end) => decoder.row(b, dv, start, end));
    client.query(copy);
    await copy.done;
    await client.query('COMMIT');
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    client.release(broken);
  }
}

/** Rows a time slice of a window should hold about: what one batch costs in memory, not the window. */
export const SLICE_ROWS = 262_144;
/** Packs a (variable, unit) pair of dictionary codes into one exact number. */
const PAIR = 2 ** 21;

/** The planner's estimate of a window's rows (cheap: no rows are read). */
async function estimateRows(pool: pg.Pool, def: DatasetDef, start: Date, end: Date): Promise<number> {
  const r = await pool.query(
    `EXPLAIN (FORMAT JSON) SELECT 1 FROM observations WHERE ${datasetWhere(def, inlineLiteral, { from: start, to: end })}`,
  );
  const plan = (r.rows[0] as { 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] })['QUERY PLAN'][0].Plan;
  return Math.max(0, Number(plan['Plan Rows']) || 0);
}

/**
 * A window as a schema and its record batches, read one time slice at a time: each slice is a binary
 * COPY of consecutive time range, sorted by time in Node and handed on as one batch before the slice
 * after next is read, so memory holds about two slices whatever the window's size. All batches share
 * the dictionaries (later batches only add values: an IPC writer sends them as dictionary deltas).
 * The value column's CF metadata depends on every (variable, unit) of the window: it is filled in
 * once the last batch has been read, which is in time for the Arrow file's schema (written in its
 * footer, see builder.ts), not for a stream's.
 */
export interface WindowBatches {
  schema: Schema;
  batches: AsyncGenerator<RecordBatch>;
}

export async function openWindow(
  pool: pg.Pool,
  def: DatasetDef,
  start: Date,
  end: Date,
  metadata: Map<string, string>,
  opts: { sliceRows?: number; parallel?: number } = {},
): Promise<WindowBatches> {
  if (isAggregated(def)) {
    // Statistics per interval: a small table (one row per series and interval), read whole.
    const table = await readAggregatedWindow(pool, def, start, end, metadata);
    return {
      schema: table.schema,
      batches: (async function* () {
        yield* table.batches;
      })(),
    };
  }
  const sliceRows = opts.sliceRows ?? SLICE_ROWS;
  const parallel = Math.max(1, opts.parallel ?? 2);
  const span = end.getTime() - start.getTime();
  const estimate = await estimateRows(pool, def, start, end);
  const n = Math.max(parallel, Math.min(Math.ceil(estimate / sliceRows), Math.floor(span / 1000)));
  const count = Math.max(1, Math.min(n, Math.floor(span / 1000)));
  const bounds = Array.from({ length: count + 1 }, (_, i) =>
    i === count ? end : new Date(start.getTime() + Math.floor((span * i) / count)),
  );
  const dicts = new WindowDicts();
  const valueMeta = new Map<string, string>();
  const cf = new Map<string, Map<string, string>>([...Object.entries(CF_COORDINATES), ['value', valueMeta]]);
  const types = new WindowDecoder(dicts).types();
  const fields = WINDOW_FIELDS.map(
    (f, i) => new Field(f.name, types[i] as DataType, f.nullable, cf.get(f.name) ?? new Map()),
  );
  const schema = new Schema(fields, metadata);
  const struct = new Struct(fields);
  const pairs = new Set<number>();
  const units = (k: number) => Math.floor(k / PAIR);
  let bbox: Bbox | null = null;

  async function* batches(): AsyncGenerator<RecordBatch> {
    const read = (i: number) => {
      const d = new WindowDecoder(dicts);
      return readSlice(pool, def, bounds[i] as Date, bounds[i + 1] as Date, d).then(() => d);
    };
    const inFlight: Promise<WindowDecoder>[] = [];
    let next = 0;
    try {
      while (next < count && inFlight.length < parallel) inFlight.push(read(next++));
      while (inFlight.length > 0) {
        const d = await (inFlight.shift() as Promise<WindowDecoder>);
        if (next < count) inFlight.push(read(next++));
        d.sortByTime();
        for (let i = 0; i < d.variable.length; i++) {
          pairs.add(d.variable.codeAt(i) * PAIR + d.unit.codeAt(i));
        }
        const columns = d.columns();
        const lon = columns[WINDOW_COLUMNS.indexOf('lon')]?.data;
        const lat = columns[WINDOW_COLUMNS.indexOf('lat')]?.data;
        if (lon && lat) bbox = unionBbox(bbox, bboxOf(lon, lat));
        yield new RecordBatch(
          schema,
          makeData({ type: struct, length: d.rows, children: columns.map((c) => c.data) }),
        );
      }
      // Like the CF metadata, in time for the file's footer (the GeoParquet export reads it there).
      metadata.set(BBOX_METADATA, JSON.stringify(bbox));
      const text = new TextDecoder();
      for (const [k, v] of cfValueMetadata(
        [...pairs].map((k) => [
          text.decode(dicts.of('variable').values[units(k)]),
          text.decode(dicts.of('unit').values[k % PAIR]),
        ]),
      )) {
        valueMeta.set(k, v);
      }
    } finally {
      // Slices still being read (the consumer stopped early, or one failed): let them finish quietly.
      for (const p of inFlight) p.catch(() => undefined);
    }
  }
  return { schema, batches: batches() };
}

/**
 * One dataset window as an Arrow table (for readers that need it whole, such as the read API's small
 * ranges): the batches of `openWindow`, collected. Builds stream them instead (builder.ts).
 */
export async function readWindow(
  pool: pg.Pool,
  def: DatasetDef,
  start: Date,
  end: Date,
  metadata: Map<string, string>,
): Promise<Table> {
  const { schema, batches } = await openWindow(pool, def, start, end, metadata);
  const all: RecordBatch[] = [];
  for await (const b of batches) all.push(b);
  return new Table(schema, all);
}
