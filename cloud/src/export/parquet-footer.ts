import { open } from 'node:fs/promises';

/**
 * Key-value metadata of a Parquet file, set after its rows are written.
 *
 * A Parquet file ends with its footer (FileMetaData, Thrift compact protocol), the footer's length
 * and `PAR1`; the key-value metadata is one field of that footer. A file streamed from rows whose
 * metadata is known only at the end (a window's bounding box, the variables it holds) is written
 * with provisional values, then this rewrites the footer in place with the final ones: the row
 * groups before it do not move, so every offset in the footer stays right.
 */

const MAGIC = 'PAR1';
/** FileMetaData's field `key_value_metadata: list<KeyValue>`. */
const KEY_VALUE_FIELD = 5;

// Thrift compact protocol types.
const T_BOOL_TRUE = 1;
const T_BOOL_FALSE = 2;
const T_BYTE = 3;
const T_I16 = 4;
const T_I32 = 5;
const T_I64 = 6;
const T_DOUBLE = 7;
const T_BINARY = 8;
const T_LIST = 9;
const T_SET = 10;
const T_MAP = 11;
const T_STRUCT = 12;

class Reader {
  constructor(
    readonly b: Uint8Array,
    public p = 0,
  ) {}
  byte(): number {
    if (this.p >= this.b.length) throw new Error('Parquet footer ends early');
    return this.b[this.p++] as number;
  }
  varint(): number {
    let out = 0;
    let mul = 1;
    for (;;) {
      const x = this.byte();
      out += (x & 0x7f) * mul;
      if (x < 0x80) return out;
      mul *= 128;
    }
  }
  /** A field header: its id and type, or undefined at the struct's end. */
  field(last: number): { id: number; type: number } | undefined {
    const h = this.byte();
    const type = h & 0x0f;
    if (type === 0) return undefined;
    const delta = h >> 4;
    if (delta !== 0) return { id: last + delta, type };
    const z = this.varint();
    return { id: z % 2 === 0 ? z / 2 : -(z + 1) / 2, type };
  }
  skip(type: number, inList = false): void {
    switch (type) {
      case T_BOOL_TRUE:
      case T_BOOL_FALSE:
        // In a struct the value is the type itself; in a list it takes a byte.
        if (inList) this.p++;
        return;
      case T_BYTE:
        this.p++;
        return;
      case T_I16:
      case T_I32:
      case T_I64:
        this.varint();
        return;
      case T_DOUBLE:
        this.p += 8;
        return;
      case T_BINARY: {
        // Not `this.p += this.varint()`: that adds to the position read before the length.
        const n = this.varint();
        this.p += n;
        return;
      }
      case T_LIST:
      case T_SET: {
        const h = this.byte();
        const n = h >> 4 === 15 ? this.varint() : h >> 4;
        for (let i = 0; i < n; i++) this.skip(h & 0x0f, true);
        return;
      }
      case T_MAP: {
        const n = this.varint();
        if (n === 0) return;
        const kv = this.byte();
        for (let i = 0; i < n; i++) {
          this.skip(kv >> 4, true);
          this.skip(kv & 0x0f, true);
        }
        return;
      }
      case T_STRUCT: {
        let last = 0;
        for (let f = this.field(last); f; f = this.field(last)) {
          this.skip(f.type);
          last = f.id;
        }
        return;
      }
      default:
        throw new Error(`Parquet footer: unknown Thrift type ${type}`);
    }
  }
  string(): string {
    const n = this.varint();
    const s = Buffer.from(this.b.buffer, this.b.byteOffset + this.p, n).toString('utf8');
    this.p += n;
    return s;
  }
}

function varint(n: number): number[] {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** `list<KeyValue>` in the compact protocol (KeyValue: 1 key, 2 value, both strings). */
function encodeKeyValues(entries: readonly (readonly [string, string | undefined])[]): Buffer {
  const parts: Buffer[] = [
    Buffer.from(
      entries.length < 15 ? [(entries.length << 4) | T_STRUCT] : [0xf0 | T_STRUCT, ...varint(entries.length)],
    ),
  ];
  for (const [k, v] of entries) {
    const key = Buffer.from(k, 'utf8');
    parts.push(Buffer.from([0x10 | T_BINARY, ...varint(key.length)]), key);
    if (v !== undefined) {
      const value = Buffer.from(v, 'utf8');
      parts.push(Buffer.from([0x10 | T_BINARY, ...varint(value.length)]), value);
    }
    parts.push(Buffer.from([0]));
  }
  return Buffer.concat(parts);
}

/** Reads a `list<KeyValue>` at the reader's position. */
function decodeKeyValues(r: Reader): [string, string | undefined][] {
  const h = r.byte();
  const n = h >> 4 === 15 ? r.varint() : h >> 4;
  if ((h & 0x0f) !== T_STRUCT) throw new Error('Parquet footer: key_value_metadata is not a list of structs');
  const out: [string, string | undefined][] = [];
  for (let i = 0; i < n; i++) {
    let key = '';
    let value: string | undefined;
    let last = 0;
    for (let f = r.field(last); f; f = r.field(last)) {
      if (f.id === 1 && f.type === T_BINARY) key = r.string();
      else if (f.id === 2 && f.type === T_BINARY) value = r.string();
      else r.skip(f.type);
      last = f.id;
    }
    out.push([key, value]);
  }
  return out;
}

/**
 * The footer with the key-value entries in `values` replaced (or added at the end); the others are
 * kept in their order.
 */
export function withKeyValues(footer: Uint8Array, values: ReadonlyMap<string, string>): Buffer {
  const r = new Reader(footer);
  let last = 0;
  for (let f = r.field(last); f; f = r.field(last)) {
    if (f.id === KEY_VALUE_FIELD && f.type === T_LIST) {
      const start = r.p;
      const entries = decodeKeyValues(r);
      const end = r.p;
      const left = new Map(values);
      for (const e of entries) {
        if (left.has(e[0])) {
          e[1] = left.get(e[0]);
          left.delete(e[0]);
        }
      }
      entries.push(...left);
      return Buffer.concat([footer.subarray(0, start), encodeKeyValues(entries), footer.subarray(end)]);
    }
    r.skip(f.type);
    last = f.id;
  }
  // Writers put it in when any metadata is set; this module only changes values already written.
  throw new Error('Parquet footer has no key-value metadata to replace');
}

/** The key-value metadata of a Parquet file's footer (for checks and tests). */
export function keyValuesOf(file: Uint8Array): Map<string, string | undefined> {
  const { footer } = footerOf(file);
  const r = new Reader(footer);
  let last = 0;
  for (let f = r.field(last); f; f = r.field(last)) {
    if (f.id === KEY_VALUE_FIELD && f.type === T_LIST) return new Map(decodeKeyValues(r));
    r.skip(f.type);
    last = f.id;
  }
  return new Map();
}

function footerOf(file: Uint8Array): { footer: Uint8Array; start: number } {
  const b = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (b.length < 12 || b.toString('latin1', b.length - 4) !== MAGIC) throw new Error('not a Parquet file');
  const len = b.readUInt32LE(b.length - 8);
  const start = b.length - 8 - len;
  if (start < 4) throw new Error('Parquet footer longer than the file');
  return { footer: b.subarray(start, b.length - 8), start };
}

/**
 * Rewrites the footer of the Parquet file at `path` with the key-value entries in `values`; returns
 * the file's new size.
 */
export async function setParquetKeyValues(
  path: string,
  values: ReadonlyMap<string, string>,
): Promise<number> {
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    const tail = Buffer.alloc(8);
    if (size < 12) throw new Error(`${path} is not a Parquet file`);
    await fh.read(tail, 0, 8, size - 8);
    if (tail.toString('latin1', 4) !== MAGIC) throw new Error(`${path} is not a Parquet file`);
    const len = tail.readUInt32LE(0);
    const start = size - 8 - len;
    if (start < 4) throw new Error(`${path}: Parquet footer longer than the file`);
    const footer = Buffer.alloc(len);
    await fh.read(footer, 0, len, start);
    const next = withKeyValues(footer, values);
    const end = Buffer.alloc(8);
    end.writeUInt32LE(next.length, 0);
    end.write(MAGIC, 4, 'latin1');
    const out = Buffer.concat([next, end]);
    await fh.write(out, 0, out.length, start);
    await fh.truncate(start + out.length);
    return start + out.length;
  } finally {
    await fh.close();
  }
}
