import {
  type Data,
  Dictionary,
  Field,
  Float64,
  Int32,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  TimestampMillisecond,
  Utf8,
  Vector,
} from 'apache-arrow';

/**
 * Column builders that fill Arrow buffers directly from bytes (no per-row JS objects, no string per
 * cell): this is what keeps a 1-million-row window build within its budget.
 */

function grow<T extends Int32Array | Float64Array | Uint8Array>(a: T, need: number): T {
  if (need <= a.length) return a;
  let n = a.length * 2;
  while (n < need) n *= 2;
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}

/** A validity bitmap, allocated only once a null shows up. */
class Validity {
  bits: Uint8Array | undefined;
  nulls = 0;
  setNull(i: number, length: number): void {
    if (!this.bits) {
      this.bits = new Uint8Array(Math.max(64, ((length + 7) >> 3) * 2)).fill(0xff);
    }
    this.bits = growFilled(this.bits, (i >> 3) + 1);
    this.bits[i >> 3] = (this.bits[i >> 3] ?? 0) & ~(1 << (i & 7));
    this.nulls++;
  }
  ensure(i: number): void {
    if (this.bits) this.bits = growFilled(this.bits, (i >> 3) + 1);
  }
  bitmap(length: number): Uint8Array | undefined {
    return this.bits ? this.bits.subarray(0, (length + 7) >> 3) : undefined;
  }
  valid(i: number): boolean {
    return !this.bits || (((this.bits[i >> 3] ?? 0) >> (i & 7)) & 1) === 1;
  }
  /** Reorders the bits: row i becomes the old row perm[i]. */
  permute(perm: Uint32Array): void {
    const old = this.bits;
    if (!old) return;
    const bits = new Uint8Array(Math.max(64, ((perm.length + 7) >> 3) * 2)).fill(0xff);
    for (let i = 0; i < perm.length; i++) {
      const j = perm[i] as number;
      if (!(((old[j >> 3] ?? 0) >> (j & 7)) & 1)) bits[i >> 3] = (bits[i >> 3] ?? 0) & ~(1 << (i & 7));
    }
    this.bits = bits;
  }
}

function gather<T extends Int32Array | Float64Array>(a: T, perm: Uint32Array): T {
  const out = new (a.constructor as new (n: number) => T)(Math.max(perm.length, 1));
  for (let i = 0; i < perm.length; i++) out[i] = a[perm[i] as number] as number;
  return out;
}
function growFilled(a: Uint8Array, need: number): Uint8Array {
  if (need <= a.length) return a;
  const b = new Uint8Array(Math.max(need, a.length * 2)).fill(0xff);
  b.set(a);
  return b;
}

/** Utf8 data from byte strings. */
function utf8Data(values: readonly Uint8Array[]): Data<Utf8> {
  const offsets = new Int32Array(values.length + 1);
  let size = 0;
  values.forEach((v, i) => {
    offsets[i] = size;
    size += v.length;
  });
  offsets[values.length] = size;
  const data = new Uint8Array(size);
  values.forEach((v, i) => {
    data.set(v, offsets[i]);
  });
  return makeData({ type: new Utf8(), length: values.length, valueOffsets: offsets, data });
}

function sameBytes(a: Uint8Array, b: Uint8Array, start: number, len: number): boolean {
  if (a.length !== len) return false;
  for (let i = 0; i < len; i++) if (a[i] !== b[start + i]) return false;
  return true;
}

/**
 * The distinct byte strings of a dictionary column, shareable by several column builders (slices of
 * one window read in parallel), so all their batches use one dictionary.
 */
export class DictValues {
  readonly values: Uint8Array[] = [];
  private readonly byHash = new Map<number, number[]>();
  private vector: Vector<Utf8> | undefined;
  /** The dictionary so far as chunks: batches written one by one add only their new values (a delta). */
  private readonly chunks: Data<Utf8>[] = [];
  private chunked = 0;
  constructor(readonly id: number) {}

  code(buf: Uint8Array, start: number, len: number): number {
    // A cheap key from the length and the first and last four bytes (ids like "st-17" differ at the
    // end); collisions only cost a byte comparison within the bucket.
    let h = len;
    if (len >= 4) {
      const a =
        (buf[start] as number) | ((buf[start + 1] as number) << 8) | ((buf[start + 2] as number) << 16);
      const e = start + len;
      const z =
        (buf[e - 1] as number) |
        ((buf[e - 2] as number) << 8) |
        ((buf[e - 3] as number) << 16) |
        ((buf[e - 4] as number) << 24);
      h = Math.imul(h ^ a, 0x01000193) ^ z;
    } else {
      for (let k = start; k < start + len; k++) h = Math.imul(h ^ (buf[k] as number), 0x01000193);
    }
    const bucket = this.byHash.get(h);
    if (bucket) {
      for (const c of bucket) if (sameBytes(this.values[c] as Uint8Array, buf, start, len)) return c;
    }
    const code = this.values.length;
    // A copy (`Buffer#slice` is a view): the value outlives the socket chunk it was read from.
    this.values.push(Uint8Array.prototype.slice.call(buf, start, start + len));
    if (bucket) bucket.push(code);
    else this.byHash.set(h, [code]);
    this.vector = undefined;
    return code;
  }

  type(): Dictionary<Utf8, Int32> {
    return new Dictionary(new Utf8(), new Int32(), this.id);
  }

  /**
   * The dictionary as one vector of chunks: the values known when each batch was made, then those
   * added since. A batch written after more values came shares the earlier chunks, so an IPC writer
   * sends only the new ones (a dictionary delta), and batches made together share one vector.
   */
  dictionary() {
    if (this.vector && this.chunked === this.values.length) return this.vector;
    if (this.chunks.length === 0 || this.chunked < this.values.length) {
      this.chunks.push(utf8Data(this.values.slice(this.chunked)));
      this.chunked = this.values.length;
    }
    this.vector = new Vector(this.chunks.slice());
    return this.vector;
  }
}

/** Dictionary<Int32, Utf8> column: each distinct byte string is stored once, in `dict`. */
export class DictColumn {
  private codes = new Int32Array(1024);
  private readonly validity = new Validity();
  private last = -1;
  length = 0;
  constructor(readonly dict: DictValues) {}

  push(buf: Uint8Array, start: number, len: number): void {
    const i = this.length++;
    this.codes = grow(this.codes, this.length);
    this.validity.ensure(i);
    // Runs of one value are common (one unit, one source): compare with the previous code first.
    const prev = this.dict.values[this.last];
    if (prev && sameBytes(prev, buf, start, len)) {
      this.codes[i] = this.last;
      return;
    }
    const code = this.dict.code(buf, start, len);
    this.codes[i] = code;
    this.last = code;
  }

  pushNull(): void {
    const i = this.length++;
    this.codes = grow(this.codes, this.length);
    this.codes[i] = 0;
    this.validity.setNull(i, this.length);
  }

  /** The dictionary code of row `i`, or -1 when it is null. */
  codeAt(i: number): number {
    return this.validity.valid(i) ? (this.codes[i] as number) : -1;
  }

  /** Adds a JS string (for builders fed by rows rather than bytes). */
  pushString(s: string | null): void {
    if (s === null) this.pushNull();
    else {
      const b = Buffer.from(s, 'utf8');
      this.push(b, 0, b.length);
    }
  }

  permute(perm: Uint32Array): void {
    this.codes = gather(this.codes.subarray(0, this.length), perm);
    this.validity.permute(perm);
  }

  data(): Data<Dictionary<Utf8, Int32>> {
    const nullBitmap = this.validity.bitmap(this.length);
    return makeData({
      type: this.dict.type(),
      length: this.length,
      nullCount: this.validity.nulls,
      ...(nullBitmap ? { nullBitmap } : {}),
      data: this.codes.subarray(0, this.length),
      dictionary: this.dict.dictionary(),
    });
  }
}

export class Float64Column {
  private values = new Float64Array(1024);
  private readonly validity = new Validity();
  length = 0;
  push(v: number): void {
    const i = this.length++;
    this.values = grow(this.values, this.length);
    this.validity.ensure(i);
    this.values[i] = v;
  }
  pushNull(): void {
    const i = this.length++;
    this.values = grow(this.values, this.length);
    this.values[i] = 0;
    this.validity.setNull(i, this.length);
  }
  permute(perm: Uint32Array): void {
    this.values = gather(this.values.subarray(0, this.length), perm);
    this.validity.permute(perm);
  }
  data(): Data<Float64> {
    const nullBitmap = this.validity.bitmap(this.length);
    return makeData({
      type: new Float64(),
      length: this.length,
      nullCount: this.validity.nulls,
      ...(nullBitmap ? { nullBitmap } : {}),
      data: this.values.subarray(0, this.length),
    });
  }
}

/** Int32 column (counts), never null. */
export class Int32Column {
  private values = new Int32Array(1024);
  length = 0;
  push(v: number): void {
    const i = this.length++;
    this.values = grow(this.values, this.length);
    this.values[i] = v;
  }
  data(): Data<Int32> {
    return makeData({ type: new Int32(), length: this.length, data: this.values.subarray(0, this.length) });
  }
}

/** Timestamp(ms, UTC), never null; kept as float64 milliseconds (exact) until `data()`. */
export class TimeColumn {
  private ms = new Float64Array(1024);
  length = 0;
  push(ms: number): void {
    const i = this.length++;
    this.ms = grow(this.ms, this.length);
    this.ms[i] = ms;
  }
  values(): Float64Array {
    return this.ms.subarray(0, this.length);
  }
  permute(perm: Uint32Array): void {
    this.ms = gather(this.ms.subarray(0, this.length), perm);
  }
  data(): Data<TimestampMillisecond> {
    // int64 written as two int32 words: no BigInt per row.
    const words = new Int32Array(Math.max(2, this.length * 2));
    for (let i = 0; i < this.length; i++) {
      const ms = this.ms[i] as number;
      words[2 * i] = ms >>> 0;
      words[2 * i + 1] = Math.floor(ms / 4294967296);
    }
    return makeData({
      type: new TimestampMillisecond('UTC'),
      length: this.length,
      data: new BigInt64Array(words.buffer, 0, this.length),
    });
  }
}

/**
 * The order that sorts `times` ascending, ties kept in their order; undefined when already sorted.
 * Sorts packed float64 keys (time offset and row index in one exact number) with the native typed-
 * array sort when they fit in 53 bits, which is much faster than a comparator.
 */
export function sortOrder(times: Float64Array): Uint32Array | undefined {
  const n = times.length;
  let sorted = true;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const t = times[i] as number;
    if (i > 0 && t < (times[i - 1] as number)) sorted = false;
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  if (sorted) return undefined;
  const perm = new Uint32Array(n);
  if ((hi - lo + 1) * n < 2 ** 53) {
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) keys[i] = ((times[i] as number) - lo) * n + i;
    keys.sort();
    for (let i = 0; i < n; i++) perm[i] = (keys[i] as number) % n;
    return perm;
  }
  for (let i = 0; i < n; i++) perm[i] = i;
  return perm.sort((a, b) => (times[a] as number) - (times[b] as number) || a - b);
}

/** List<Utf8> (quality flags), null when the row has none. */
export class StringListColumn {
  private offsets = new Int32Array(1024);
  private readonly validity = new Validity();
  private childOffsets = new Int32Array(1024);
  private childBytes = new Uint8Array(4096);
  private children = 0;
  private bytes = 0;
  length = 0;
  /** Starts a row's list; add its items with `item`. */
  begin(): void {
    const i = this.length++;
    this.offsets = grow(this.offsets, this.length + 1);
    this.validity.ensure(i);
    this.offsets[i] = this.children;
    this.offsets[i + 1] = this.children;
  }
  item(buf: Uint8Array, start: number, len: number): void {
    this.childOffsets = grow(this.childOffsets, this.children + 2);
    this.childBytes = grow(this.childBytes, this.bytes + len);
    this.childOffsets[this.children] = this.bytes;
    this.childBytes.set(buf.subarray(start, start + len), this.bytes);
    this.bytes += len;
    this.children++;
    this.childOffsets[this.children] = this.bytes;
    this.offsets[this.length] = this.children;
  }
  pushNull(): void {
    this.begin();
    this.validity.setNull(this.length - 1, this.length);
  }
  permute(perm: Uint32Array): void {
    const offsets = new Int32Array(perm.length + 1);
    const childOffsets = new Int32Array(this.children + 1);
    const childBytes = new Uint8Array(Math.max(1, this.bytes));
    let children = 0;
    let bytes = 0;
    for (let i = 0; i < perm.length; i++) {
      const j = perm[i] as number;
      offsets[i] = children;
      for (let c = this.offsets[j] as number; c < (this.offsets[j + 1] as number); c++) {
        const from = this.childOffsets[c] as number;
        const to = this.childOffsets[c + 1] as number;
        childOffsets[children] = bytes;
        childBytes.set(this.childBytes.subarray(from, to), bytes);
        bytes += to - from;
        children++;
      }
    }
    offsets[perm.length] = children;
    childOffsets[children] = bytes;
    this.offsets = offsets;
    this.childOffsets = childOffsets;
    this.childBytes = childBytes;
    this.validity.permute(perm);
  }
  type(): List<Utf8> {
    return new List(new Field('item', new Utf8(), true));
  }
  data(): Data<List<Utf8>> {
    this.childOffsets[this.children] = this.bytes;
    const child = makeData({
      type: new Utf8(),
      length: this.children,
      valueOffsets: this.childOffsets.subarray(0, this.children + 1),
      data: this.childBytes.subarray(0, this.bytes),
    });
    const nullBitmap = this.validity.bitmap(this.length);
    return makeData({
      type: this.type(),
      length: this.length,
      nullCount: this.validity.nulls,
      ...(nullBitmap ? { nullBitmap } : {}),
      valueOffsets: this.offsets.subarray(0, this.length + 1),
      child,
    });
  }
}

/** A column of a batch: its name, data, and whether it may hold nulls. */
export interface NamedColumn {
  name: string;
  data: Data;
  nullable: boolean;
  /** Field metadata (CF `standard_name`, `units`, ...). */
  metadata?: Map<string, string>;
}

/** One table from batches of named column data (same names and types in each), with schema metadata. */
export function tableOf(batches: readonly (readonly NamedColumn[])[], metadata: Map<string, string>): Table {
  const first = batches[0] ?? [];
  const fields = first.map((c) => new Field(c.name, c.data.type, c.nullable, c.metadata));
  const schema = new Schema(fields, metadata);
  return new Table(
    schema,
    batches.map((columns) => {
      const length = columns[0]?.data.length ?? 0;
      const struct = makeData({ type: new Struct(fields), length, children: columns.map((c) => c.data) });
      return new RecordBatch(schema, struct);
    }),
  );
}
