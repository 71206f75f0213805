/**
 * A small CBOR (RFC 8949) reader: just what SenML CBOR packs use (integers, floats of every width,
 * text and byte strings, arrays, maps, simple values; tags are read through). It is bounded (nesting,
 * lengths checked against the bytes left) so hostile input costs little and never throws out.
 */

export type CborValue = number | string | boolean | null | undefined | Uint8Array | CborValue[] | CborMap;
export type CborMap = Map<CborValue, CborValue>;

const MAX_DEPTH = 16;

class CborError extends Error {}

export function decodeCbor(
  bytes: Uint8Array,
): { ok: true; value: CborValue } | { ok: false; reason: string } {
  try {
    const r = new Reader(bytes);
    const value = r.item(0);
    if (r.pos !== bytes.length)
      return { ok: false, reason: `CBOR: ${bytes.length - r.pos} bytes after the first item` };
    return { ok: true, value };
  } catch (err) {
    if (err instanceof CborError) return { ok: false, reason: `CBOR: ${err.message}` };
    throw err;
  }
}

class Reader {
  pos = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private need(n: number): void {
    if (n > this.bytes.length - this.pos) throw new CborError(`truncated at byte ${this.pos}`);
  }

  private u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }

  /** The argument of a head: the count, length or value that follows the major type. */
  private argument(info: number): number {
    if (info < 24) return info;
    const width = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (width === 0) throw new CborError(`indefinite or reserved length (info ${info}) is not supported`);
    this.need(width);
    const at = this.pos;
    this.pos += width;
    if (width === 1) return this.view.getUint8(at);
    if (width === 2) return this.view.getUint16(at);
    if (width === 4) return this.view.getUint32(at);
    return this.view.getUint32(at) * 2 ** 32 + this.view.getUint32(at + 4);
  }

  item(depth: number): CborValue {
    if (depth > MAX_DEPTH) throw new CborError(`nested deeper than ${MAX_DEPTH}`);
    const head = this.u8();
    const major = head >> 5;
    const info = head & 0x1f;
    if (major === 7) return this.simple(info);
    const arg = this.argument(info);
    switch (major) {
      case 0:
        return arg;
      case 1:
        return -1 - arg;
      case 2: {
        this.need(arg);
        const out = this.bytes.slice(this.pos, this.pos + arg);
        this.pos += arg;
        return out;
      }
      case 3: {
        this.need(arg);
        const text = new TextDecoder('utf-8', { fatal: true });
        let s: string;
        try {
          s = text.decode(this.bytes.subarray(this.pos, this.pos + arg));
        } catch {
          throw new CborError(`text string at byte ${this.pos} is not UTF-8`);
        }
        this.pos += arg;
        return s;
      }
      case 4: {
        this.need(arg); // every element takes at least one byte
        const out: CborValue[] = [];
        for (let i = 0; i < arg; i++) out.push(this.item(depth + 1));
        return out;
      }
      case 5: {
        this.need(arg * 2);
        const out: CborMap = new Map();
        for (let i = 0; i < arg; i++) {
          const k = this.item(depth + 1);
          out.set(k, this.item(depth + 1));
        }
        return out;
      }
      default: // 6: a tag; its meaning does not matter to SenML, the tagged item does
        return this.item(depth + 1);
    }
  }

  private simple(info: number): CborValue {
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 25: {
        this.need(2);
        const h = this.view.getUint16(this.pos);
        this.pos += 2;
        return halfToNumber(h);
      }
      case 26: {
        this.need(4);
        const f = this.view.getFloat32(this.pos);
        this.pos += 4;
        return shortestFloat32(f);
      }
      case 27: {
        this.need(8);
        const d = this.view.getFloat64(this.pos);
        this.pos += 8;
        return d;
      }
      default:
        throw new CborError(`unsupported simple value ${info}`);
    }
  }
}

/**
 * A float32 as the shortest decimal that reads back to the same float32: the sender meant `1.2`,
 * not `1.2000000476837158`.
 */
function shortestFloat32(f: number): number {
  if (!Number.isFinite(f)) return f;
  for (let p = 1; p < 10; p++) {
    const d = Number(f.toPrecision(p));
    if (Math.fround(d) === f) return d;
  }
  return f;
}

/** IEEE 754 half precision (`f9 3e00` = 1.5). */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}
