/**
 * One decoder for every payload (a new one per message was a visible cost at high rates): with
 * `fatal` and without `stream` each `decode` stands alone, a failed one included.
 */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Payload bytes as text, or undefined when they are not valid UTF-8. */
export function utf8(payload: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(payload);
  } catch {
    return undefined;
  }
}

/** Markers firmware sends for "no reading"; they are skipped and counted, never stored as zero. */
const NO_READING = new Set(['', 'nan', '-nan', 'none', 'null', 'unknown', 'unavailable', '-', 'n/a']);

export function isNoReading(text: string): boolean {
  return NO_READING.has(text.trim().toLowerCase());
}

/** A finite number from a JSON value or numeric string, else undefined. */
export function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(v)) {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** One field's raw value, sorted into what a decoder can do with it. */
export type Scalar =
  | { kind: 'number'; value: number }
  | { kind: 'text'; text: string }
  /** A "no reading" marker: JSON null, `nan`, `unknown`, `""`, ...; `shown` is it as JSON, for reasons. */
  | { kind: 'none'; shown: string }
  /** An object or array: not a single reading. */
  | { kind: 'other' };

/**
 * Sorts a JSON value. Numeric strings count as numbers (zigbee2mqtt 0.x sent `"battery":"100.00"`);
 * booleans become text, because a state is not a quantity.
 */
export function classify(raw: unknown): Scalar {
  if (raw === null || raw === undefined) return { kind: 'none', shown: 'null' };
  if (typeof raw === 'number') {
    return Number.isFinite(raw) ? { kind: 'number', value: raw } : { kind: 'none', shown: String(raw) };
  }
  if (typeof raw === 'boolean') return { kind: 'text', text: String(raw) };
  if (typeof raw === 'string') {
    if (isNoReading(raw)) return { kind: 'none', shown: JSON.stringify(raw) };
    const n = toNumber(raw);
    return n === undefined ? { kind: 'text', text: raw } : { kind: 'number', value: n };
  }
  return { kind: 'other' };
}

/**
 * Sorts a plain-text payload (one value per topic: Shelly Gen1, ESPHome, zigbee2mqtt attribute output).
 * JSON arrays and objects on such a topic are `other`, never coerced to a number.
 */
export function classifyPlain(text: string): Scalar {
  const t = text.trim();
  if (t.startsWith('[') || t.startsWith('{')) return { kind: 'other' };
  return classify(t);
}

/** Parses JSON without throwing: the value, or the parser's complaint as an actionable reason. */
export function parseJson(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, reason: `payload is not JSON: ${(err as Error).message}` };
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A payload quoted for an error message: short, on one line. */
export function preview(text: string, max = 40): string {
  const one = JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);
  return one;
}

/**
 * `table[key]` for the table's own keys only: a payload key such as `constructor` or `__proto__`
 * must never reach `Object.prototype`.
 */
export function own<T>(table: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return table !== undefined && Object.hasOwn(table, key) ? table[key] : undefined;
}
