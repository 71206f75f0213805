import { readFileSync } from 'node:fs';
import { interpolateEnv, isSubjectToken, retypeReferences } from '@fieldbeam/protocol';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { CloudError, CloudErrorCode } from '../errors.js';
import { parseDuration } from './windows.js';

const Duration = z.string().transform((text, ctx) => {
  try {
    return parseDuration(text);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});
const Names = z.array(z.string().min(1).max(200)).min(1);

/** Statistics an aggregated dataset can compute per interval (see aggregate.ts for each one's rule). */
export const AGGREGATE_STATS = ['mean', 'min', 'max', 'count', 'sum', 'first', 'last'] as const;
export type AggregateStat = (typeof AGGREGATE_STATS)[number];

const Aggregate = z
  .object({
    /** Interval length, a fixed ISO-8601 duration that divides the window (PT10M in PT1H). */
    every: Duration,
    /** Columns written per interval, in this order; default all. */
    stats: z
      .array(z.enum(AGGREGATE_STATS))
      .min(1)
      .refine((s) => new Set(s).size === s.length, 'list each statistic once')
      .default([...AGGREGATE_STATS]),
    /** Readings carrying any of these quality flags are left out of the statistics (counted in `excluded`). */
    exclude_flags: z.array(z.string().min(1).max(64)).max(64).default([]),
  })
  .strict()
  .transform(({ exclude_flags, ...a }) => ({ ...a, excludeFlags: exclude_flags }));

const DatasetSchema = z
  .object({
    /** Also the subject token of its events (`fb.dataset.<name>`) and the folder of its objects. */
    name: z.string().refine(isSubjectToken, 'use 1-64 of A-Z a-z 0-9 _ -'),
    title: z.string().max(200).optional(),
    description: z.string().max(2000).optional(),
    /** Which observations belong to the dataset; an absent list means "any". */
    filter: z
      .object({ sources: Names.optional(), stations: Names.optional(), variables: Names.optional() })
      .strict()
      .default({}),
    /** Window length, a fixed ISO-8601 duration aligned to the epoch in UTC (PT1H, P1D, ...). */
    window: Duration,
    /** Wait after a window's end before its final build (late data after that re-opens it). */
    grace: Duration.default(0),
    /** Wait after the latest new data in a window before building it. */
    debounce: Duration.default(0),
    /** Whether windows still open get provisional builds (after the debounce). */
    provisional: z.boolean().default(false),
    /**
     * Longest wait after a window became dirty before it is built, even while data keeps arriving
     * (the debounce alone moves on with every batch). Absent: no limit.
     */
    max_delay: Duration.optional(),
    /** Statistics per station, sensor, variable and unit over fixed intervals instead of raw readings. */
    aggregate: Aggregate.optional(),
  })
  .strict()
  .refine((d) => d.window >= 1000, { message: 'window must be at least PT1S', path: ['window'] })
  .refine((d) => d.max_delay === undefined || d.max_delay >= 1000, {
    message: 'max_delay must be at least PT1S',
    path: ['max_delay'],
  })
  .refine((d) => !d.aggregate || (d.aggregate.every >= 1000 && d.window % d.aggregate.every === 0), {
    message: 'aggregate.every must be at least PT1S and divide the window (PT10M in PT1H, not PT7M)',
    path: ['aggregate', 'every'],
  })
  .transform(({ max_delay, ...d }) => ({
    ...d,
    ...(max_delay !== undefined ? { maxDelay: max_delay } : {}),
  }));

export type DatasetDef = Readonly<z.infer<typeof DatasetSchema>>;

const FileSchema = z
  .object({ datasets: z.array(DatasetSchema).default([]) })
  .strict()
  .superRefine((f, ctx) => {
    const seen = new Set<string>();
    f.datasets.forEach((d, i) => {
      if (seen.has(d.name)) {
        ctx.addIssue({
          code: 'custom',
          message: `duplicate dataset name "${d.name}"`,
          path: ['datasets', i, 'name'],
        });
      }
      seen.add(d.name);
    });
  });

function invalid(where: string, problems: string[]): CloudError {
  return new CloudError(
    CloudErrorCode.CONFIG_INVALID,
    `invalid dataset configuration in ${where}:\n  ${problems.join('\n  ')}`,
    false,
  );
}

const showPath = (path: readonly PropertyKey[]) => (path.length ? path.map(String).join('.') : '(root)');

/**
 * Validates a parsed datasets document, with `${NAME}` and `${NAME:-default}` in its string values
 * replaced from `env` (as in the edge's config; `$${NAME}` is the text itself); every problem,
 * an unset variable included, is reported with its path, in one error.
 */
export function parseDatasets(
  doc: unknown,
  where = 'datasets',
  env: Readonly<Record<string, string | undefined>> = process.env,
): readonly DatasetDef[] {
  const interpolated = interpolateEnv(doc ?? {}, env);
  let parsed = FileSchema.safeParse(interpolated.value);
  if (!parsed.success) {
    const retyped = retypeReferences(interpolated.value, parsed.error.issues, interpolated.typed);
    if (retyped !== undefined) parsed = FileSchema.safeParse(retyped);
  }
  const problems = interpolated.problems.map((p) => `${showPath(p.path)}: ${p.message}`);
  if (!parsed.success) problems.push(...parsed.error.issues.map((i) => `${showPath(i.path)}: ${i.message}`));
  if (problems.length > 0 || !parsed.success) throw invalid(where, problems);
  return Object.freeze(
    parsed.data.datasets.map((d) =>
      Object.freeze({
        ...d,
        filter: Object.freeze(d.filter),
        ...(d.aggregate ? { aggregate: Object.freeze(d.aggregate) } : {}),
      }),
    ),
  );
}

/** Reads the datasets YAML file (`FB_DATASETS_FILE`); no file means no datasets. */
export function loadDatasets(file: string | undefined): readonly DatasetDef[] {
  if (!file) return [];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw invalid(file, [`cannot read: ${(err as Error).message}`]);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw invalid(file, [`not valid YAML: ${(err as Error).message}`]);
  }
  return parseDatasets(doc, file);
}

/** Whether a batch summary (sources, stations, variables) can contain rows of the dataset. */
export function datasetMayMatch(
  d: DatasetDef,
  batch: {
    source: readonly string[];
    stations: readonly string[];
    variables?: readonly string[] | undefined;
  },
): boolean {
  const any = (want: readonly string[] | undefined, have: readonly string[] | undefined) =>
    !want || !have || have.some((h) => want.includes(h));
  return (
    any(d.filter.sources, batch.source) &&
    any(d.filter.stations, batch.stations) &&
    any(d.filter.variables, batch.variables)
  );
}
