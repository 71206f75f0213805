import { type Observation, observationId } from '@fieldbeam/protocol';
import { formatIssTimestamp } from '../../edge/src/iss/iss-timestamp.js';
import type { ReplayLine } from '../../edge/src/iss-replay/replay-source.js';
import type { ObservationSink } from '../../edge/src/readings.js';

/**
 * Helpers for the ISS source suites: an in-memory ObservationSink (a double of our own port, the
 * outbox's stand-in), update builders and the observations they must become.
 */

export interface MemorySink extends ObservationSink {
  readonly observations: Observation[];
  /** While set, submit() rejects as the outbox does when full under the `block` policy. */
  full: boolean;
  refused: number;
}

export function memorySink(): MemorySink {
  const sink: MemorySink = {
    observations: [],
    full: false,
    refused: 0,
    async submit(batch) {
      await new Promise((r) => setImmediate(r));
      if (sink.full) {
        sink.refused++;
        throw new Error('buffer full (block policy)');
      }
      sink.observations.push(...batch);
    },
  };
  return sink;
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Hands out distinct, increasing ISS instants (ms) a little in the past, so the year is the clock's. */
export function issClock(startMs = Math.floor(Date.now() / 1000) * 1000 - 600_000) {
  let t = startMs;
  return () => {
    t += 125;
    return t;
  };
}

/** An update as the feed sends it, status "signal, green". */
export function line(
  item: string,
  value: string | null,
  atMs: number,
  over: Partial<ReplayLine> = {},
): ReplayLine {
  return {
    item,
    TimeStamp: formatIssTimestamp(atMs),
    Value: value,
    'Status.Class': '24',
    'Status.Indicator': '',
    'Status.Color': 'Green',
    CalibratedData: '',
    ...over,
  };
}

/** The clock item, with or without signal. */
export function clock(atMs: number, signal = true): ReplayLine {
  return line('TIME_000001', formatIssTimestamp(atMs), atMs, {
    'Status.Class': signal ? '24' : '9',
    'Status.Color': signal ? 'Green' : 'Red',
  });
}

/** What the source must emit for an update: the parts of the observation the id depends on. */
export interface Expected {
  id: string;
  variable: string;
  value: number | null;
  text?: string;
  time: string;
}

export function expected(item: string, value: string, atMs: number): Expected {
  const numeric = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(value) ? Number(value) : null;
  const time = new Date(atMs).toISOString();
  const variable = `iss:${item}`;
  const text = numeric === null ? value : undefined;
  const id = observationId({ source: 'isslive', station: 'ISS', variable, time, value: numeric, text });
  return text === undefined
    ? { id, variable, value: numeric, time }
    : { id, variable, value: numeric, text, time };
}

/** Counts of each id, to show duplicates. */
export function duplicates(observations: readonly Observation[]): string[] {
  const seen = new Map<string, number>();
  for (const o of observations) seen.set(o.id, (seen.get(o.id) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([id]) => id);
}
