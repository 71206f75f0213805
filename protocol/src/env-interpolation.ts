/**
 * `${NAME}` and `${NAME:-default}` in config files (the edge's YAML, the collector's datasets file),
 * replaced by environment variables in the string values of the parsed document: never in keys or
 * comments, and a value can never change the document's structure (it is not YAML text). `${NAME}`
 * takes the variable's value, an empty one included; `${NAME:-default}` takes `default` when the
 * variable is unset or empty (as the shell does). An unset variable without a default is a problem
 * naming it and the key. `$${NAME}` is the text `${NAME}` itself (the escape); any other `$` is text.
 * Pure: the caller passes the environment.
 */

/** `$`, an optional second `$` (the escape), `{NAME}` or `{NAME:-default}`. */
const REFERENCE = /\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
/** Numbers and booleans as YAML 1.2 (core schema) reads a plain scalar. */
const YAML_NUMBER = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;
const YAML_BOOLEAN: Record<string, boolean> = {
  true: true,
  True: true,
  TRUE: true,
  false: false,
  False: false,
  FALSE: false,
};

export type ConfigPath = readonly (string | number)[];

export interface EnvProblem {
  path: ConfigPath;
  message: string;
}

/** A string that was one reference alone and whose value reads as a number or boolean. */
export interface TypedReference {
  path: ConfigPath;
  value: number | boolean;
}

export interface EnvInterpolation {
  value: unknown;
  problems: EnvProblem[];
  /** See `retypeReferences`. */
  typed: TypedReference[];
}

/** The string with its references replaced, the variables that were unset with no default, and whether it was one reference alone. */
export function interpolateString(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
): { text: string; missing: string[]; whole: boolean } {
  const missing: string[] = [];
  let references = 0;
  let whole = false;
  const out = text.replace(
    REFERENCE,
    (match, escaped: string, name: string, fallback: string | undefined) => {
      if (escaped) return match.slice(1);
      references++;
      whole = match.length === text.length;
      const value = env[name];
      if (fallback !== undefined) return value === undefined || value === '' ? fallback : value;
      if (value === undefined) missing.push(name);
      return value ?? '';
    },
  );
  return { text: out, missing, whole: whole && references === 1 };
}

/**
 * Replaces the references in every string of `doc` (a parsed YAML/JSON document). Nesting deeper
 * than `maxDepth` is a problem (the subtree becomes undefined), so a hostile document cannot make
 * the walk overflow the stack.
 */
export function interpolateEnv(
  doc: unknown,
  env: Readonly<Record<string, string | undefined>>,
  opts: { maxDepth?: number } = {},
): EnvInterpolation {
  const maxDepth = opts.maxDepth ?? 32;
  const problems: EnvProblem[] = [];
  const typed: TypedReference[] = [];
  const walk = (value: unknown, path: (string | number)[]): unknown => {
    if (typeof value === 'string') {
      const r = interpolateString(value, env);
      for (const name of r.missing)
        problems.push({ path, message: `environment variable ${name} is not set` });
      if (r.whole && r.missing.length === 0) {
        if (YAML_NUMBER.test(r.text)) typed.push({ path, value: Number(r.text) });
        else if (r.text in YAML_BOOLEAN) typed.push({ path, value: YAML_BOOLEAN[r.text] as boolean });
      }
      return r.text;
    }
    if (value === null || typeof value !== 'object') return value;
    if (path.length >= maxDepth) {
      problems.push({ path, message: `nested more than ${maxDepth} levels deep` });
      return undefined;
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, [...path, i]));
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, [...path, k])]));
  };
  return { value: walk(doc, []), problems, typed };
}

/** The part of a schema issue `retypeReferences` looks at (zod's issues have it). */
export interface TypeIssue {
  code: string;
  path: readonly PropertyKey[];
  expected?: string;
}

const samePath = (a: readonly PropertyKey[], b: ConfigPath) =>
  a.length === b.length && a.every((k, i) => k === b[i] || String(k) === String(b[i]));

/**
 * After a schema refused the interpolated document: a value written as one reference alone
 * (`port: ${MQTT_PORT}`) where the schema wants a number or a boolean, and whose value reads as one,
 * takes that type. Where the schema wants text (`password: ${PASS}`, PASS=12345) it stays text. The
 * document with those values changed, or undefined when no issue was such a value.
 */
export function retypeReferences(
  value: unknown,
  issues: readonly TypeIssue[],
  typed: readonly TypedReference[],
): unknown {
  const fixes = issues.flatMap((issue) => {
    if (issue.code !== 'invalid_type') return [];
    const t = typed.find((r) => samePath(issue.path, r.path));
    return t && issue.expected === typeof t.value ? [t] : [];
  });
  if (fixes.length === 0) return undefined;
  const copy = structuredClone(value);
  for (const { path, value: v } of fixes) {
    let node = copy as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
    const last = path[path.length - 1];
    if (last === undefined) return v;
    node[last] = v;
  }
  return copy;
}
