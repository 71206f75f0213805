import { Observation } from '@fieldbeam/protocol';
import { type FieldValue, OBSERVATION_FIELDS, type ObservationField } from './observation-fields.js';

/**
 * Observations as rows of `COPY ... FROM STDIN (FORMAT binary)`, in the field table's order. Postgres
 * reads binary numbers and timestamps without parsing text, and ingest's encoder writes each row into
 * one growing buffer (no string per field, no object per row). The npm package pg-copy-streams-binary
 * does the same format through one object per field in an object-mode stream, which costs more than
 * the encoding itself at a hundred thousand rows a second.
 *
 * Format: a header (signature, flags, extension length), then per row a 16-bit field count and per
 * field a 32-bit length (-1: NULL) and the bytes, then a 16-bit -1.
 */

/** The rows of one batch as binary COPY tuples, without header or trailer. */
export interface EncodedRows {
  bytes: Uint8Array;
  /** Where each row starts in `bytes`, and where the last one ends (length: rows + 1). */
  offsets: Uint32Array;
  /** The distinct months ("YYYY-MM") of the rows' times: the partitions they need. */
  months: string[];
}

export const rowCount = (rows: EncodedRows) => rows.offsets.length - 1;

export const COPY_BINARY_HEADER = Buffer.concat([
  Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'),
  Buffer.alloc(8), // flags, header extension length
]);
export const COPY_BINARY_TRAILER = Buffer.from([0xff, 0xff]);

/** PG's binary timestamps count microseconds from 2000-01-01 UTC. */
const PG_EPOCH_MS = 946_684_800_000;
const TWO_32 = 4_294_967_296;
const TEXT_OID = 25;

const FIELDS: readonly ObservationField[] = OBSERVATION_FIELDS;
const TIME_INDEX = FIELDS.findIndex((f) => f.name === 'time');

/** Days from 1970-01-01 to a civil date (H. Hinnant's algorithm): no Date object per row. */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

const digits = (s: string, at: number, n: number) => {
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 10 + (s.charCodeAt(at + i) - 48);
  return v;
};

/** Grows as rows are written; `take()` hands the bytes over and starts afresh. */
export class RowWriter {
  private buf: Buffer;
  private p = 0;
  private offsets: number[] = [];
  private months = new Set<string>();
  // Never a prefix of a time, so the first row sets them.
  private month = '\u0000';
  private dayKey = '\u0000';
  private dayMs = 0;

  constructor(capacity = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  private ensure(n: number): void {
    if (this.p + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.p + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.p);
    this.buf = next;
  }

  /** Epoch milliseconds of a wire time (`YYYY-MM-DDTHH:MM:SS.sssZ`, validated before it gets here). */
  private ms(iso: string): number {
    if (iso.length !== 24) return Date.parse(iso);
    if (!iso.startsWith(this.dayKey)) {
      this.dayKey = iso.slice(0, 11);
      this.dayMs = daysFromCivil(digits(iso, 0, 4), digits(iso, 5, 2), digits(iso, 8, 2)) * 86_400_000;
    }
    return (
      this.dayMs +
      digits(iso, 11, 2) * 3_600_000 +
      digits(iso, 14, 2) * 60_000 +
      digits(iso, 17, 2) * 1000 +
      digits(iso, 20, 3)
    );
  }

  private text(s: string): void {
    this.ensure(4 + s.length * 3);
    const n = this.buf.write(s, this.p + 4, 'utf8');
    this.buf.writeInt32BE(n, this.p);
    this.p += 4 + n;
  }

  private timestamp(iso: string): void {
    this.timestampField(this.ms(iso));
  }

  /*
   * Field by field, for encoders that hold a batch's columns rather than observation objects
   * (v2-rows.ts): `startRow`, then one call per field in the field table's order, then `endRow`.
   */

  /** Starts a row of all the field table's fields. */
  startRow(): void {
    this.offsets.push(this.p);
    this.ensure(2);
    this.buf.writeInt16BE(FIELDS.length, this.p);
    this.p += 2;
  }

  /** A field already encoded, its length word included (see {@link encodedText}). */
  encodedField(field: Uint8Array): void {
    this.ensure(field.length);
    this.buf.set(field, this.p);
    this.p += field.length;
  }

  /** A text field of one-byte characters only (a hex id): no UTF-8 encoding to do. */
  latin1Field(s: string): void {
    this.ensure(4 + s.length);
    this.buf.writeInt32BE(s.length, this.p);
    this.buf.write(s, this.p + 4, 'latin1');
    this.p += 4 + s.length;
  }

  nullField(): void {
    this.ensure(4);
    this.buf.writeInt32BE(-1, this.p);
    this.p += 4;
  }

  float8Field(v: number): void {
    this.ensure(12);
    this.buf.writeInt32BE(8, this.p);
    this.buf.writeDoubleBE(v, this.p + 4);
    this.p += 12;
  }

  textArrayField(items: readonly string[]): void {
    this.textArray(items);
  }

  /** A timestamptz field from epoch milliseconds. */
  timestampField(epochMs: number): void {
    // Microseconds as int64, exactly: split the milliseconds so no product passes 2^53.
    const ms = epochMs - PG_EPOCH_MS;
    const a = Math.floor(ms / TWO_32);
    const b = (ms - a * TWO_32) * 1000;
    const carry = Math.floor(b / TWO_32);
    this.ensure(12);
    this.buf.writeInt32BE(8, this.p);
    this.buf.writeInt32BE(a * 1000 + carry, this.p + 4);
    this.buf.writeUInt32BE(b - carry * TWO_32, this.p + 8);
    this.p += 12;
  }

  private textArray(items: readonly string[]): void {
    this.ensure(24);
    const start = this.p;
    this.buf.writeInt32BE(items.length > 0 ? 1 : 0, start + 4); // dimensions
    this.buf.writeInt32BE(0, start + 8); // has nulls
    this.buf.writeInt32BE(TEXT_OID, start + 12);
    this.p += 16;
    if (items.length > 0) {
      this.buf.writeInt32BE(items.length, this.p);
      this.buf.writeInt32BE(1, this.p + 4); // lower bound
      this.p += 8;
      for (const s of items) this.text(s);
    }
    this.buf.writeInt32BE(this.p - start - 4, start);
  }

  private field(f: ObservationField, v: FieldValue): void {
    if (v === undefined || v === null) {
      this.ensure(4);
      this.buf.writeInt32BE(-1, this.p);
      this.p += 4;
      return;
    }
    switch (f.type) {
      case 'text':
        this.text(v as string);
        return;
      case 'float8':
        this.ensure(12);
        this.buf.writeInt32BE(8, this.p);
        this.buf.writeDoubleBE(v as number, this.p + 4);
        this.p += 12;
        return;
      case 'timestamptz':
        this.timestamp(v as string);
        return;
      case 'text[]':
        this.textArray(v as readonly string[]);
        return;
    }
  }

  /** Appends one observation as a row. */
  write(o: Observation): void {
    this.startRow();
    for (let i = 0; i < FIELDS.length; i++) {
      const f = FIELDS[i] as ObservationField;
      this.field(f, f.of(o));
    }
    this.endRow(o.time);
  }

  /** Ends a row begun by `startRow`: `time` (its wire time) names the partition it needs. */
  endRow(time: string): void {
    if (!time.startsWith(this.month)) {
      this.month = time.slice(0, 7);
      this.months.add(this.month);
    }
  }

  /** The rows written since the last take, in a buffer of their own. */
  take(): EncodedRows {
    const bytes = new Uint8Array(this.p);
    bytes.set(this.buf.subarray(0, this.p));
    const offsets = Uint32Array.from(this.offsets);
    const out = { bytes, offsets: appendEnd(offsets, this.p), months: [...this.months] };
    this.p = 0;
    this.offsets = [];
    this.months = new Set();
    this.month = '\u0000';
    return out;
  }
}

/** A text field's bytes with their length word, for {@link RowWriter.encodedField}. */
export function encodedText(s: string): Uint8Array {
  const bytes = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(4 + bytes.length);
  out.writeInt32BE(bytes.length, 0);
  bytes.copy(out, 4);
  return out;
}

function appendEnd(offsets: Uint32Array, end: number): Uint32Array {
  const out = new Uint32Array(offsets.length + 1);
  out.set(offsets);
  out[offsets.length] = end;
  return out;
}

/** Observations as rows (what the decode threads do for each batch). */
export function encodeRows(observations: readonly Observation[]): EncodedRows {
  const w = new RowWriter(Math.max(1024, observations.length * 256));
  for (const o of observations) w.write(o);
  return w.take();
}

/** Rows [from, to) of `rows` (views, no copy of the bytes). */
export function sliceRows(rows: EncodedRows, from: number, to: number): EncodedRows {
  const start = rows.offsets[from] as number;
  const offsets = new Uint32Array(to - from + 1);
  for (let i = from; i <= to; i++) offsets[i - from] = (rows.offsets[i] as number) - start;
  const bytes = rows.bytes.subarray(start, rows.offsets[to] as number);
  return { bytes, offsets, months: monthsOf(bytes, offsets) };
}

/**
 * The rows with a leading `seq` (bigint) field: the staging table's layout. Each row is copied once
 * with a new field count in front (the replay path only).
 */
export function withSeq(rows: EncodedRows, seq: number): Buffer {
  const n = rowCount(rows);
  const out = Buffer.allocUnsafe(rows.bytes.length + n * 12);
  const src = Buffer.from(rows.bytes.buffer, rows.bytes.byteOffset, rows.bytes.byteLength);
  let p = 0;
  for (let i = 0; i < n; i++) {
    const start = rows.offsets[i] as number;
    const end = rows.offsets[i + 1] as number;
    out.writeInt16BE(src.readInt16BE(start) + 1, p);
    out.writeInt32BE(8, p + 2);
    const hi = Math.floor(seq / TWO_32);
    out.writeInt32BE(hi, p + 6);
    out.writeUInt32BE(seq - hi * TWO_32, p + 10);
    p += 14;
    p += src.copy(out, p, start + 2, end);
  }
  return out.subarray(0, p);
}

/** The field positions of row `i`: [start of each field's length word]. */
function fieldStarts(b: Buffer, start: number): number[] {
  const at: number[] = [];
  let p = start + 2;
  for (let f = 0; f < FIELDS.length; f++) {
    at.push(p);
    p += 4 + Math.max(0, b.readInt32BE(p));
  }
  return at;
}

function readTime(b: Buffer, p: number): string {
  const us = b.readInt32BE(p) * TWO_32 + b.readUInt32BE(p + 4);
  return new Date(Math.floor(us / 1000) + PG_EPOCH_MS).toISOString();
}

function monthsOf(bytes: Uint8Array, offsets: Uint32Array): string[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const months = new Set<string>();
  for (let i = 0; i + 1 < offsets.length; i++) {
    const at = fieldStarts(b, offsets[i] as number)[TIME_INDEX] as number;
    months.add(readTime(b, at + 4).slice(0, 7));
  }
  return [...months];
}

/** Row `i` read back as an observation (absent fields left out): what a dead letter shows of it. */
export function rowObservation(rows: EncodedRows, i: number): Record<string, unknown> {
  const b = Buffer.from(rows.bytes.buffer, rows.bytes.byteOffset, rows.bytes.byteLength);
  const at = fieldStarts(b, rows.offsets[i] as number);
  const out: Record<string, unknown> = {};
  FIELDS.forEach((f, k) => {
    const p = at[k] as number;
    const len = b.readInt32BE(p);
    if (len < 0) {
      // NULL is an absent field, or null where the protocol has the field always (`value`).
      if (!Observation.shape[f.key].isOptional()) out[f.key] = null;
      return;
    }
    const q = p + 4;
    switch (f.type) {
      case 'text':
        out[f.key] = b.toString('utf8', q, q + len);
        return;
      case 'float8':
        out[f.key] = b.readDoubleBE(q);
        return;
      case 'timestamptz':
        out[f.key] = readTime(b, q);
        return;
      case 'text[]': {
        const items: string[] = [];
        if (b.readInt32BE(q) === 1) {
          const n = b.readInt32BE(q + 12);
          let r = q + 20;
          for (let k2 = 0; k2 < n; k2++) {
            const l = b.readInt32BE(r);
            items.push(b.toString('utf8', r + 4, r + 4 + l));
            r += 4 + l;
          }
        }
        out[f.key] = items;
        return;
      }
    }
  });
  return out;
}
