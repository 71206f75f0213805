import { parseDuration, type StreamSpec, streams } from '@fieldbeam/protocol';
import type { CloudConfig } from '../config.js';

/**
 * How long the collector keeps rows of its bookkeeping tables, as ISO-8601 durations: the one home of
 * these defaults (settings-help and the README show them from here).
 */
export const DEFAULT_RETENTION = {
  /** The audit of which ingest batch touched which window (`datasets --window`). */
  windowMarks: 'P90D',
  /** Every build attempt with its outcome and error. */
  datasetBuilds: 'P30D',
  /** What ingest, the builder and exporters set aside (`dead-letters`). */
  deadLetters: 'P30D',
  /** How often one collector looks for rows to prune. */
  every: 'PT1H',
} as const;

/** Rows deleted per statement: each is a short transaction that never holds many locks for long. */
export const PRUNE_BATCH_ROWS = 1000;

/** Retention in force, in ms. */
export interface Retention {
  windowMarksMs: number;
  datasetBuildsMs: number;
  deadLettersMs: number;
  everyMs: number;
}

export function retentionOf(c: CloudConfig): Retention {
  return {
    windowMarksMs: parseDuration(c.FB_RETAIN_WINDOW_MARKS ?? DEFAULT_RETENTION.windowMarks),
    datasetBuildsMs: parseDuration(c.FB_RETAIN_DATASET_BUILDS ?? DEFAULT_RETENTION.datasetBuilds),
    deadLettersMs: parseDuration(c.FB_RETAIN_DEAD_LETTERS ?? DEFAULT_RETENTION.deadLetters),
    everyMs: parseDuration(c.FB_RETENTION_EVERY ?? DEFAULT_RETENTION.every),
  };
}

/** Replicas of each stream and the sensor bucket without FB_STREAM_REPLICAS: a single nats-server. */
export const DEFAULT_REPLICAS = 1;

/** The settings of each stream's limits; unset ones keep protocol/src/streams.ts's defaults. */
const STREAM_SETTINGS = {
  OBS: ['FB_OBS_MAX_BYTES', 'FB_OBS_MAX_AGE'],
  EVENTS: ['FB_EVENTS_MAX_BYTES', 'FB_EVENTS_MAX_AGE'],
  DATASETS: ['FB_DATASETS_MAX_BYTES', 'FB_DATASETS_MAX_AGE'],
  STATUS: ['FB_STATUS_MAX_BYTES', 'FB_STATUS_MAX_AGE'],
} as const satisfies Record<keyof typeof streams, readonly [keyof CloudConfig, keyof CloudConfig]>;

/** The streams as this collector's settings size them. */
export function streamSpecs(c: CloudConfig): StreamSpec[] {
  return (Object.keys(streams) as (keyof typeof streams)[]).map((k) => {
    const [bytes, age] = STREAM_SETTINGS[k];
    const maxBytes = c[bytes] as number | undefined;
    const maxAge = c[age] as string | undefined;
    return {
      ...streams[k],
      replicas: c.FB_STREAM_REPLICAS ?? DEFAULT_REPLICAS,
      ...(maxBytes ? { maxBytes } : {}),
      ...(maxAge ? { maxAgeMs: parseDuration(maxAge) } : {}),
    };
  });
}

/** Names of the stream-limit settings, with the stream and the default each has, for `--help`. */
export function streamSettingDefaults(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(STREAM_SETTINGS) as (keyof typeof streams)[]) {
    const [bytes, age] = STREAM_SETTINGS[k];
    out[bytes] = describeBytes(streams[k].maxBytes);
    out[age] = streams[k].maxAgeMs === 0 ? 'P0D, none' : describeAge(streams[k].maxAgeMs);
  }
  return out;
}

function describeBytes(n: number): string {
  for (const [unit, size] of [
    ['GiB', 1024 ** 3],
    ['MiB', 1024 ** 2],
  ] as const) {
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return String(n);
}

function describeAge(ms: number): string {
  const day = 86_400_000;
  return ms % day === 0 ? `P${ms / day}D` : `PT${ms / 3_600_000}H`;
}

/**
 * Settings that contradict each other: a window mark pruned while the DataAvailable that made it can
 * still be redelivered would let that delivery bump the window's generation again.
 */
export function retentionProblems(c: CloudConfig): string[] {
  const problems: string[] = [];
  try {
    const marks = retentionOf(c).windowMarksMs;
    const events = streamSpecs(c).find((s) => s.name === streams.EVENTS.name)?.maxAgeMs ?? 0;
    if (events === 0 || marks <= events) {
      problems.push(
        `FB_RETAIN_WINDOW_MARKS: must be longer than the FB_EVENTS stream's age (FB_EVENTS_MAX_AGE${events === 0 ? ', which is unlimited' : ''})`,
      );
    }
    if (retentionOf(c).everyMs < 60_000) problems.push('FB_RETENTION_EVERY: at least PT1M');
  } catch {
    // A malformed duration is reported by the schema.
  }
  return problems;
}
