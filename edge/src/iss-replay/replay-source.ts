import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { formatIssTimestamp } from '../iss/iss-timestamp.js';
import { ISS_CLOCK_ITEM } from '../iss/isslive-schema.js';
import type { ItemFeed, ItemUpdate } from './item-feed.js';

/**
 * Recorded ISSLIVE updates played back into the replay server's feed.
 *
 * A replay file is JSON Lines, one update per line, named as the TLCP schema names the fields:
 *   {"item":"USLAB000058","TimeStamp":"7845.340775","Value":"742.99","Status.Class":"24","Status.Color":"Green"}
 * Fields left out keep their previous value (MERGE); `null` is sent as null. Numbers are accepted
 * but strings keep the exact spelling the feed used (`29.6900005340576`, trailing zeros).
 */

const FieldText = z.union([z.string(), z.number().transform((n) => String(n)), z.null()]).optional();

export const ReplayLine = z
  .object({
    item: z.string().regex(/^[A-Za-z0-9_]+$/, 'expected an ISSLIVE item id such as USLAB000058'),
    TimeStamp: FieldText,
    Value: FieldText,
    'Status.Class': FieldText,
    'Status.Indicator': FieldText,
    'Status.Color': FieldText,
    CalibratedData: FieldText,
  })
  .strict();
/** A replay line as written (the input form of {@link ReplayLine}). */
export type ReplayLine = z.input<typeof ReplayLine>;

export function toItemUpdate(line: ReplayLine): ItemUpdate {
  const { item, ...fields } = ReplayLine.parse(line);
  return { item, fields };
}

/** Parses JSON Lines; blank lines and lines starting with `#` are skipped. Reports every bad line. */
export function parseReplayJsonl(text: string, origin = 'replay'): ItemUpdate[] {
  const updates: ItemUpdate[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    try {
      updates.push(toItemUpdate(JSON.parse(line)));
    } catch (error) {
      const why = error instanceof z.ZodError ? z.prettifyError(error).replaceAll('\n', '; ') : String(error);
      problems.push(`${origin}:${i + 1}: ${why}`);
    }
  });
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).join('\n  ');
    const more = problems.length > 10 ? `\n  … and ${problems.length - 10} more` : '';
    throw new Error(`${problems.length} unusable replay line(s):\n  ${shown}${more}`);
  }
  return updates;
}

export async function readReplayFile(path: string): Promise<ItemUpdate[]> {
  return parseReplayJsonl(await readFile(path, 'utf8'), path);
}

export interface ReplayOptions {
  /**
   * Playback speed against the recorded TimeStamps: 1 is real time, 10 ten times faster,
   * Infinity everything at once. Lines without a TimeStamp go out with the line before.
   */
  speed?: number;
  /** Start again after the last line (needs a finite speed). */
  loop?: boolean;
  /**
   * Re-stamp every TimeStamp with the wall-clock instant it is sent at (and the clock item's Value
   * with it), so a replay looks live and each loop yields new observations instead of duplicates.
   */
  retime?: boolean;
  now?: () => number;
  onEnd?: () => void;
}

/** At most this many updates per timer turn, so a large file at Infinity speed does not stall the loop. */
const MAX_PER_TURN = 1_000;

/** Milliseconds after start at which each update is due, never decreasing. */
export function replayOffsets(updates: readonly ItemUpdate[], speed: number): number[] {
  if (!(speed > 0)) throw new Error(`replay speed must be > 0, got ${speed}`);
  let first: number | undefined;
  let last = 0;
  return updates.map((u) => {
    const hours = Number(u.fields.TimeStamp ?? Number.NaN);
    if (Number.isFinite(hours) && speed !== Number.POSITIVE_INFINITY) {
      first ??= hours;
      // Whole milliseconds: float noise (899.9999…) must not push a line into the next timer turn.
      last = Math.max(last, Math.round(((hours - first) * 3_600_000) / speed));
    }
    return last;
  });
}

function restamp(update: ItemUpdate, atMs: number): ItemUpdate {
  const ts = update.fields.TimeStamp;
  if (ts === undefined || ts === null) return update;
  const stamp = formatIssTimestamp(atMs);
  const fields = { ...update.fields, TimeStamp: stamp };
  // The clock item's Value is the time itself.
  if (update.item === ISS_CLOCK_ITEM && update.fields.Value === ts) fields.Value = stamp;
  return { item: update.item, fields };
}

/** Plays `updates` into `feed`; returns a handle whose `stop()` cancels what is still due. */
export function startReplay(feed: ItemFeed, updates: readonly ItemUpdate[], opts: ReplayOptions = {}) {
  const speed = opts.speed ?? 1;
  const now = opts.now ?? Date.now;
  if (opts.loop && !Number.isFinite(speed)) throw new Error('a looping replay needs a finite speed');
  const offsets = replayOffsets(updates, speed);
  const lastOffset = offsets.at(-1) ?? 0;
  let next = 0;
  let loopStart = now();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const step = () => {
    timer = undefined;
    if (stopped) return;
    const elapsed = now() - loopStart;
    const batch: ItemUpdate[] = [];
    while (next < updates.length && (offsets[next] as number) <= elapsed && batch.length < MAX_PER_TURN) {
      const u = updates[next] as ItemUpdate;
      batch.push(opts.retime ? restamp(u, loopStart + (offsets[next] as number)) : u);
      next++;
    }
    if (batch.length > 0) feed.publish(batch);
    if (next >= updates.length) {
      if (!opts.loop) {
        opts.onEnd?.();
        return;
      }
      next = 0;
      // The next loop starts one recorded second (at this speed) after the last line.
      loopStart += lastOffset + 1_000 / speed;
    }
    timer = setTimeout(step, Math.max(0, (offsets[next] as number) - (now() - loopStart)));
  };
  step();

  return {
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
