import { isObject } from './text.js';

export type Lookup = { found: true; value: unknown } | { found: false };

const NOT_FOUND: Lookup = { found: false };

/**
 * Looks up a dotted path such as `SDS0X1.PM2.5` or `switch:0.aenergy.by_minute[0]` in a parsed JSON
 * document. Keys may contain dots themselves, so the path is matched against the keys the object
 * really has: the longest key that the rest of the path starts with wins, and a shorter one is tried
 * only if the longer leads nowhere. `[n]` (or a plain `n` segment) indexes an array.
 */
export function resolvePath(doc: unknown, path: string): Lookup {
  if (path === '') return { found: true, value: doc };
  if (Array.isArray(doc)) {
    const m = /^(?:\[(\d+)\]|(\d+)(?=$|[.[]))/.exec(path);
    if (!m) return NOT_FOUND;
    const index = Number(m[1] ?? m[2]);
    if (index >= doc.length) return NOT_FOUND;
    return resolvePath(doc[index], stripDot(path.slice(m[0].length)));
  }
  if (!isObject(doc)) return NOT_FOUND;
  // A path without `.` or `[` can only be a key of its own (the common case, looked up per message).
  if (path.indexOf('.') < 0 && path.indexOf('[') < 0) {
    return Object.hasOwn(doc, path) ? { found: true, value: doc[path] } : NOT_FOUND;
  }
  const candidates = Object.keys(doc)
    .filter((k) => path === k || path.startsWith(`${k}.`) || path.startsWith(`${k}[`))
    .sort((a, b) => b.length - a.length);
  for (const key of candidates) {
    const hit = resolvePath(doc[key], stripDot(path.slice(key.length)));
    if (hit.found) return hit;
  }
  return NOT_FOUND;
}

function stripDot(rest: string): string {
  return rest.startsWith('.') ? rest.slice(1) : rest;
}

/** Every scalar leaf of a document with its dotted path, depth-first, at most `maxDepth` levels down. */
export function* leaves(doc: unknown, maxDepth: number, prefix = ''): Generator<[string, unknown]> {
  if (Array.isArray(doc)) {
    if (maxDepth <= 0) return;
    for (const [i, v] of doc.entries()) yield* leaves(v, maxDepth - 1, `${prefix}[${i}]`);
    return;
  }
  if (isObject(doc)) {
    if (maxDepth <= 0) return;
    for (const [k, v] of Object.entries(doc))
      yield* leaves(v, maxDepth - 1, prefix === '' ? k : `${prefix}.${k}`);
    return;
  }
  yield [prefix, doc];
}
