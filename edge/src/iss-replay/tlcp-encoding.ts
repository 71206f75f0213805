/**
 * TLCP 2.5.0 text encoding (tlcp.md §3–§4): notification lines, request parameters, and the
 * delta-encoded field list of `U` notifications. Pure functions, shared by the replay server and
 * its tests.
 */

/** A field value as TLCP carries it: a string, or null. */
export type FieldValue = string | null;

/**
 * Decodes `%XX` escapes byte-wise, then reads the bytes as UTF-8, exactly as the 9.2.2 client does
 * (`ParseTools.unquote`); `+` stays a plus sign, unlike in form decoding.
 */
export function percentDecode(text: string): string {
  if (!text.includes('%')) return text;
  const bytes = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(bytes.length);
  let j = 0;
  for (let i = 0; i < bytes.length; ) {
    if (bytes[i] !== 0x25) {
      out[j++] = bytes[i++] as number;
      continue;
    }
    const hex = bytes.subarray(i + 1, i + 3).toString('latin1');
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new Error(`invalid percent escape "%${hex}" in "${text}"`);
    out[j++] = Number.parseInt(hex, 16);
    i += 3;
  }
  return out.subarray(0, j).toString('utf8');
}

const pct = (c: string) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`;

/**
 * Encodes one value of a `U` field list. `|` separates fields, `%` starts an escape and CR/LF end
 * the line, so those are always escaped; `#`, `$` and `^` mean null, empty and skip only as the
 * first character, so only a leading one is escaped. Commas may stay raw: the field list is the
 * last argument and the client splits only the first three commas.
 */
export function encodeFieldValue(value: FieldValue): string {
  if (value === null) return '#';
  if (value === '') return '$';
  const escaped = value.replace(/[%|\r\n]/g, pct);
  const first = escaped.charAt(0);
  return first === '#' || first === '$' || first === '^' ? pct(first) + escaped.slice(1) : escaped;
}

/**
 * Encodes a `U` field list. The first update of an item on a subscription (`previous` undefined)
 * carries every field; later ones leave unchanged fields empty, folding runs of two or more into `^N`.
 */
export function encodeUpdate(
  previous: readonly FieldValue[] | undefined,
  next: readonly FieldValue[],
): string {
  if (previous === undefined) return next.map(encodeFieldValue).join('|');
  if (previous.length !== next.length) {
    throw new Error(`field count changed from ${previous.length} to ${next.length} within one subscription`);
  }
  const tokens: string[] = [];
  let unchanged = 0;
  const flush = () => {
    if (unchanged === 1) tokens.push('');
    else if (unchanged > 1) tokens.push(`^${unchanged}`);
    unchanged = 0;
  };
  next.forEach((value, i) => {
    if (value === previous[i]) {
      unchanged++;
    } else {
      flush();
      tokens.push(encodeFieldValue(value));
    }
  });
  flush();
  return tokens.join('|');
}

/**
 * Decodes a `U` field list against the previous values of the item (the client's side of
 * {@link encodeUpdate}). Throws on diff formats (`^P`, `^T`), which this project never sends.
 */
export function decodeUpdate(
  previous: readonly FieldValue[] | undefined,
  encoded: string,
  fieldCount: number,
): FieldValue[] {
  const out: FieldValue[] = [];
  const unchanged = () => {
    if (previous === undefined) throw new Error(`unchanged field ${out.length + 1} in a first update`);
    out.push(previous[out.length] as FieldValue);
  };
  for (const token of encoded.split('|')) {
    if (token === '') unchanged();
    else if (token === '#') out.push(null);
    else if (token === '$') out.push('');
    else if (token.startsWith('^')) {
      if (!/^\^\d+$/.test(token)) throw new Error(`unsupported field token "${token}"`);
      for (let n = Number(token.slice(1)); n > 0; n--) unchanged();
    } else out.push(percentDecode(token));
  }
  if (out.length !== fieldCount) throw new Error(`expected ${fieldCount} fields, decoded ${out.length}`);
  return out;
}

/**
 * One server notification line, without its CRLF. Numbers are written as they are; strings are
 * percent-encoded, as TLCP asks of every non-numeric argument but the `U` field list.
 */
export function tlcpLine(tag: string, ...args: ReadonlyArray<string | number>): string {
  if (args.length === 0) return tag;
  return [tag, ...args.map((a) => (typeof a === 'number' ? String(a) : encodeURIComponent(a)))].join(',');
}

/** A `U` notification: subscription id, 1-based item position, encoded field list. */
export function updateLine(subId: number, itemPos: number, encodedFields: string): string {
  return `U,${subId},${itemPos},${encodedFields}`;
}

/** Parses one line of `LS_…` request parameters (`a=1&b=x%20y`). */
export function parseParams(line: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const pair of line.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    params.set(percentDecode(key), eq < 0 ? '' : percentDecode(pair.slice(eq + 1)));
  }
  return params;
}

/** A request as the client frames it on a WebSocket: `<name>` CRLF `<params>` [CRLF `<params>` …]. */
export interface TlcpRequest {
  name: string;
  /** One entry per parameter line (`control` frames batch several). */
  params: Map<string, string>[];
}

/** Splits a WebSocket text frame into its request name and parameter lines; empty lines are ignored. */
export function parseWsRequest(frame: string): TlcpRequest {
  const [name = '', ...lines] = frame.split('\r\n');
  return { name: name.trim(), params: lines.filter((l) => l !== '').map(parseParams) };
}

/** Splits an HTTP request body (CRLF between batched sub-requests) into parameter lines. */
export function parseHttpBody(body: string): Map<string, string>[] {
  return body
    .split(/\r?\n/)
    .filter((l) => l !== '')
    .map(parseParams);
}
