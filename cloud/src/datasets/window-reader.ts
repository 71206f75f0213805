import type { Table } from 'apache-arrow';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { isAggregated, readAggregatedWindow } from './aggregate.js';
import {
  DictColumn,
  DictValues,
  Float64Column,
  type NamedColumn,
  StringListColumn,
  sortOrder,
  TimeColumn,
  tableOf,
} from './arrow-columns.js';
import { CF_COORDINATES, cfValueMetadata } from './cf.js';
import type { DatasetDef } from './dataset-config.js';

/** The columns of a dataset window, in file order. */
export const WINDOW_COLUMNS = [
  'time',
  'station',
  'sensor',
  'variable',
  'value',
  'text',
  'unit',
  'lat',
  'lon',
  'alt',
  'quality',
  'source',
  'edge',
] as const;

/** PG's binary timestamps count microseconds from 2000-01-01 UTC. */
const PG_EPOCH_MS = 946_684_800_000;
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** More bytes than any one row can take (rows come from batches of at most 256 KiB). */
const TUPLE_BOUND = 512 * 1024;

/** Whether the row whose fields start at `p` is entirely inside `buf`. */
function complete(buf: Buffer, p: number, fields: number): boolean {
  let q = p;
  for (let f = 0; f < fields; f++) {
    if (q + 4 > buf.length) return false;
    q += 4 + Math.max(buf.readInt32BE(q), 0);
    if (q > buf.length) return false;
  }
  return true;
}

/**
 * The SQL filter of a dataset over [start, end). COPY takes no bind parameters, so values are
 * quoted with the driver's `escapeLiteral`; they come from the validated dataset config.
 */
export function datasetWhere(def: DatasetDef, start: Date, end: Date): string {
  const list = (col: string, values: readonly string[] | undefined) =>
    values ? ` AND ${col} IN (${values.map((v) => pg.escapeLiteral(v)).join(', ')})` : '';
  return (
    `time >= ${pg.escapeLiteral(start.toISOString())}::timestamptz AND time < ${pg.escapeLiteral(end.toISOString())}::timestamptz` +
    list('source', def.filter.sources) +
    list('station', def.filter.stations) +
    list('variable', def.filter.variables)
  );
}

/** Decodes COPY ... (FORMAT binary) of WINDOW_COLUMNS straight into Arrow column builders. */
/** The dictionaries of the string columns, shared by every slice of one window. */
class WindowDicts {
  readonly station = new DictValues(0);
  readonly sensor = new DictValues(1);
  readonly variable = new DictValues(2);
  readonly text = new DictValues(3);
  readonly unit = new DictValues(4);
  readonly source = new DictValues(5);
  readonly edge = new DictValues(6);
}

class WindowDecoder {
  readonly time = new TimeColumn();
  readonly station: DictColumn;
  readonly sensor: DictColumn;
  readonly variable: DictColumn;
  readonly value = new Float64Column();
  readonly text: DictColumn;
  readonly unit: DictColumn;
  readonly lat = new Float64Column();
  readonly lon = new Float64Column();
  readonly alt = new Float64Column();
  readonly quality = new StringListColumn();
  readonly source: DictColumn;
  readonly edge: DictColumn;
  constructor(d: WindowDicts) {
    this.station = new DictColumn(d.station);
    this.sensor = new DictColumn(d.sensor);
    this.variable = new DictColumn(d.variable);
    this.text = new DictColumn(d.text);
    this.unit = new DictColumn(d.unit);
    this.source = new DictColumn(d.source);
    this.edge = new DictColumn(d.edge);
  }
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private headerDone = false;
  private ended = false;
  rows = 0;

  /** Takes a chunk of the COPY stream; decodes once enough has gathered. */
  push(chunk: Buffer): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= 2 * TUPLE_BOUND) this.decode(false);
  }

  /** Decodes what is left once the stream has ended. */
  finish(): void {
    this.decode(true);
    if (this.pendingBytes > 0) throw new Error('COPY stream ended inside a row');
  }

  private decode(final: boolean): void {
    const buf = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    let p = 0;
    if (!this.headerDone) {
      if (buf.length < 19 || buf.length < 19 + buf.readInt32BE(15)) {
        this.keep(buf, 0);
        return;
      }
      if (!buf.subarray(0, 11).equals(SIGNATURE)) throw new Error('not a binary COPY stream');
      p = 19 + buf.readInt32BE(15);
      this.headerDone = true;
    }
    // Rows are bounded (an observation comes in a batch of at most 256 KiB), so while more than that
    // is buffered a row is surely complete; only near the end is each row measured before decoding.
    const safe = buf.length - TUPLE_BOUND;
    while (p + 2 <= buf.length) {
      const fields = buf.readInt16BE(p);
      if (fields === -1) {
        this.ended = true;
        p += 2;
        break;
      }
      if (fields !== WINDOW_COLUMNS.length) {
        throw new Error(`expected ${WINDOW_COLUMNS.length} fields, got ${fields}`);
      }
      if (p >= safe && !complete(buf, p + 2, fields)) break;
      p = this.tuple(buf, p + 2);
      this.rows++;
    }
    if (!final || p < buf.length) this.keep(buf, p);
  }

  private keep(buf: Buffer, from: number): void {
    if (from >= buf.length) return;
    const rest = buf.subarray(from);
    this.pending = [rest];
    this.pendingBytes = rest.length;
  }

  private dict(col: DictColumn, b: Buffer, p: number): number {
    const len = b.readInt32BE(p);
    if (len < 0) {
      col.pushNull();
      return p + 4;
    }
    col.push(b, p + 4, len);
    return p + 4 + len;
  }

  private float(col: Float64Column, b: Buffer, p: number): number {
    const len = b.readInt32BE(p);
    if (len < 0) {
      col.pushNull();
      return p + 4;
    }
    col.push(b.readDoubleBE(p + 4));
    return p + 4 + len;
  }

  private tuple(b: Buffer, start: number): number {
    let p = start + 4; // time is never null: its length is 8
    const us = b.readInt32BE(p) * 4294967296 + b.readUInt32BE(p + 4);
    this.time.push(Math.floor(us / 1000) + PG_EPOCH_MS);
    p += 8;
    p = this.dict(this.station, b, p);
    p = this.dict(this.sensor, b, p);
    p = this.dict(this.variable, b, p);
    p = this.float(this.value, b, p);
    p = this.dict(this.text, b, p);
    p = this.dict(this.unit, b, p);
    p = this.float(this.lat, b, p);
    p = this.float(this.lon, b, p);
    p = this.float(this.alt, b, p);
    const len = b.readInt32BE(p);
    p += 4;
    if (len < 0) this.quality.pushNull();
    else {
      // Binary array: ndim, has-null flag, element oid, then (size, lower bound) per dim, then items.
      this.quality.begin();
      if (b.readInt32BE(p) === 1) {
        const n = b.readInt32BE(p + 12);
        let q = p + 20;
        for (let i = 0; i < n; i++) {
          const l = b.readInt32BE(q);
          q += 4;
          if (l >= 0) {
            this.quality.item(b, q, l);
            q += l;
          }
        }
      }
      p += len;
    }
    p = this.dict(this.source, b, p);
    return this.dict(this.edge, b, p);
  }

  /** Puts the rows in time order (Postgres sends them in heap order). */
  sortByTime(): void {
    const perm = sortOrder(this.time.values());
    if (!perm) return;
    for (const c of [this.time, this.value, this.lat, this.lon, this.alt, this.quality]) c.permute(perm);
    for (const c of [
      this.station,
      this.sensor,
      this.variable,
      this.text,
      this.unit,
      this.source,
      this.edge,
    ]) {
      c.permute(perm);
    }
  }

  columns(): NamedColumn[] {
    if (!this.ended && this.headerDone) throw new Error('COPY stream ended without its trailer');
    return [
      { name: 'time', data: this.time.data(), nullable: false },
      { name: 'station', data: this.station.data(), nullable: false },
      { name: 'sensor', data: this.sensor.data(), nullable: true },
      { name: 'variable', data: this.variable.data(), nullable: false },
      { name: 'value', data: this.value.data(), nullable: true },
      { name: 'text', data: this.text.data(), nullable: true },
      { name: 'unit', data: this.unit.data(), nullable: false },
      { name: 'lat', data: this.lat.data(), nullable: true },
      { name: 'lon', data: this.lon.data(), nullable: true },
      { name: 'alt', data: this.alt.data(), nullable: true },
      { name: 'quality', data: this.quality.data(), nullable: true },
      { name: 'source', data: this.source.data(), nullable: false },
      { name: 'edge', data: this.edge.data(), nullable: false },
    ];
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
    const sql = `COPY (SELECT ${WINDOW_COLUMNS.join(', ')} FROM observations WHERE ${datasetWhere(def, start, end)})
                 TO STDOUT (FORMAT binary)`;
    await client.query('BEGIN READ ONLY');
    await client.query('SET LOCAL enable_indexscan = off');
    const stream = client.query(copyTo(sql));
    await new Promise<void>((resolve, reject) => {
      stream.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk);
        } catch (err) {
          stream.destroy(err as Error);
        }
      });
      stream.once('end', () => {
        try {
          decoder.finish();
          resolve();
        } catch (err) {
          reject(err);
        }
      });
      stream.once('error', reject);
    });
    await client.query('COMMIT');
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    client.release(broken);
  }
}

/**
 * Streams one dataset window out of Postgres (binary COPY, ordered by time then id) into an Arrow
 * table, without a JS object per row. The window is read as `slices` consecutive time ranges on as
 * many connections at once, so Postgres can use more than one core; each slice becomes one record
 * batch, in time order, all sharing the dictionaries. An aggregated dataset's window is its
 * statistics over the whole intervals of [start, end) instead (aggregate.ts).
 */
export async function readWindow(
  pool: pg.Pool,
  def: DatasetDef,
  start: Date,
  end: Date,
  metadata: Map<string, string>,
  slices = 2,
): Promise<Table> {
  // An aggregated dataset's window is its per-interval statistics (aggregate.ts).
  if (isAggregated(def)) return readAggregatedWindow(pool, def, start, end, metadata);
  const dicts = new WindowDicts();
  const span = end.getTime() - start.getTime();
  const n = Math.max(1, Math.min(slices, Math.floor(span / 1000)));
  const bounds = Array.from({ length: n + 1 }, (_, i) =>
    i === n ? end : new Date(start.getTime() + Math.floor((span * i) / n)),
  );
  const decoders = Array.from({ length: n }, () => new WindowDecoder(dicts));
  await Promise.all(
    decoders.map((d, i) => readSlice(pool, def, bounds[i] as Date, bounds[i + 1] as Date, d)),
  );
  for (const d of decoders) d.sortByTime();
  const cf = new Map<string, Map<string, string>>([
    ...Object.entries(CF_COORDINATES),
    ['value', cfValueMetadata(variableUnits(dicts, decoders))],
  ]);
  return tableOf(
    decoders.map((d) => d.columns().map((c) => withMetadata(c, cf.get(c.name)))),
    metadata,
  );
}

const withMetadata = (c: NamedColumn, metadata: Map<string, string> | undefined): NamedColumn =>
  metadata ? { ...c, metadata } : c;

/** The (variable, unit) pairs present in a window, from the dictionary codes (no string per row). */
function variableUnits(dicts: WindowDicts, decoders: readonly WindowDecoder[]): [string, string][] {
  const units = dicts.unit.values.length + 1;
  const seen = new Set<number>();
  for (const d of decoders) {
    for (let i = 0; i < d.variable.length; i++) seen.add(d.variable.codeAt(i) * units + d.unit.codeAt(i));
  }
  const text = new TextDecoder();
  return [...seen].map((k) => [
    text.decode(dicts.variable.values[Math.floor(k / units)]),
    text.decode(dicts.unit.values[k % units]),
  ]);
}
