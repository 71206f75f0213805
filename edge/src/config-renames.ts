/**
 * Config keys that were renamed, applied to the parsed document before it is validated, so that a
 * config written with an old spelling keeps working and its owner is told the new one.
 *
 * Every key of the agent's config is snake_case, and one thing has one name: the decoder options
 * were camelCase once, and Tasmota's `tempUnit` and Shelly's `temperatureUnit` both meant what is
 * now `temperature_unit`.
 */

/** A renamed key: where it may stand (`*` for any list item or map key) and its new name there. */
export interface KeyRename {
  /** Dotted path of the old key, e.g. `sensors.*.decoder.tempUnit`. */
  readonly from: string;
  /** The new key, in the same object. */
  readonly to: string;
}

export const EDGE_KEY_RENAMES: readonly KeyRename[] = [
  { from: 'sensors.*.decoder.timeZone', to: 'time_zone' },
  { from: 'sensors.*.decoder.baseTopic', to: 'base_topic' },
  { from: 'sensors.*.decoder.tempUnit', to: 'temperature_unit' },
  { from: 'sensors.*.decoder.temperatureUnit', to: 'temperature_unit' },
  { from: 'sensors.*.decoder.learnFromDiscovery', to: 'learn_from_discovery' },
];

/** One old spelling found in a document: where it stood and the key it became. */
export interface RenamedKey {
  /** Path of the old key, list items as numbers. */
  readonly path: readonly (string | number)[];
  readonly to: string;
}

export interface RenameResult {
  /** The document with old keys renamed; the input is never modified (changed objects are copied). */
  readonly doc: unknown;
  readonly renamed: readonly RenamedKey[];
  /** Old keys given beside their new spelling (or beside another old one): which value is meant is unclear. */
  readonly conflicts: readonly RenamedKey[];
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Renames the old keys the table lists, wherever its paths match. A document of any shape is taken:
 * a path that does not match (a list where a map is expected, a missing key) is left alone for
 * validation to report.
 */
export function renameKeys(doc: unknown, renames: readonly KeyRename[]): RenameResult {
  const renamed: RenamedKey[] = [];
  const conflicts: RenamedKey[] = [];
  let out = doc;
  for (const rename of renames) {
    const segments = rename.from.split('.');
    out = renameAt(out, segments, [], rename.to, renamed, conflicts);
  }
  return { doc: out, renamed, conflicts };
}

function renameAt(
  node: unknown,
  segments: readonly string[],
  path: (string | number)[],
  to: string,
  renamed: RenamedKey[],
  conflicts: RenamedKey[],
): unknown {
  const [head, ...rest] = segments;
  if (head === undefined) return node;
  if (rest.length === 0) {
    if (!isPlainObject(node) || !Object.hasOwn(node, head)) return node;
    const at = { path: [...path, head], to };
    // Given twice (old and new, or two old ones for the same new key): neither is picked silently.
    const { [head]: value, ...others } = node;
    if (Object.hasOwn(node, to)) {
      // Reported as a conflict; the old key is taken out so that it is not also an unknown key.
      conflicts.push(at);
      return others;
    }
    renamed.push(at);
    return { ...others, [to]: value };
  }
  if (Array.isArray(node)) {
    if (head !== '*') return node;
    let copy: unknown[] | undefined;
    node.forEach((item, i) => {
      const next = renameAt(item, rest, [...path, i], to, renamed, conflicts);
      if (next !== item) {
        copy ??= [...node];
        copy[i] = next;
      }
    });
    return copy ?? node;
  }
  if (!isPlainObject(node)) return node;
  let copy: Record<string, unknown> | undefined;
  const keys = head === '*' ? Object.keys(node) : Object.hasOwn(node, head) ? [head] : [];
  for (const key of keys) {
    const item = node[key];
    const next = renameAt(item, rest, [...path, key], to, renamed, conflicts);
    if (next !== item) {
      copy ??= { ...node };
      // Not `copy[key] =`: a key named `__proto__` would set the prototype instead.
      Object.defineProperty(copy, key, { value: next, enumerable: true, writable: true, configurable: true });
    }
  }
  return copy ?? node;
}
