import { formatIssTimestamp } from '../iss/iss-timestamp.js';
import {
  type IssCatalogueItem,
  issEnumCodes,
  loadIssCatalogue,
  loadIssRanges,
} from '../iss/isslive-catalogue.js';
import { ISS_CLOCK_ITEM, ISS_SIGNAL_CLASS } from '../iss/isslive-schema.js';
import type { ItemFeed, ItemUpdate } from './item-feed.js';

/**
 * Live-looking ISSLIVE data for the replay server when there is no recording: walks the catalogue,
 * moving each item a little within its recorded range (enumerations switch between their codes
 * now and then), stamped with the current time. Values are printed as the feed prints them:
 * float32 readings at double precision (`742.997924804688`).
 */

export interface GeneratorOptions {
  /** Items to generate (default: every catalogue item). The clock item is always added. */
  items?: readonly string[];
  /** Ticks per second; every tick moves the clock and about a tenth of the items. */
  rate?: number;
  now?: () => number;
  random?: () => number;
}

/** Status.Class the clock reports during loss of signal (a value seen in captures, tlcp.md §8). */
const LOS_CLASS = '9';

type Model =
  | { kind: 'enum'; codes: readonly number[]; value: number }
  | { kind: 'range'; min: number; max: number; integer: boolean; value: number };

function modelFor(
  item: IssCatalogueItem | undefined,
  range: readonly [number, number] | undefined,
  random: () => number,
): Model {
  const codes = item && issEnumCodes(item);
  if (codes !== undefined)
    return { kind: 'enum', codes, value: codes[Math.floor(random() * codes.length)] ?? 0 };
  const [min, max] = range ?? [0, 100];
  const integer = item?.format === '{0:d0}';
  return { kind: 'range', min, max, integer, value: min + (max - min) * (0.25 + random() * 0.5) };
}

function step(model: Model, random: () => number): void {
  if (model.kind === 'enum') {
    if (random() < 0.1) model.value = model.codes[Math.floor(random() * model.codes.length)] ?? model.value;
    return;
  }
  const span = model.max - model.min;
  let v = model.value + span * 0.02 * (random() * 2 - 1);
  // Reflect at the recorded bounds so the walk stays inside them.
  if (v > model.max) v = 2 * model.max - v;
  if (v < model.min) v = 2 * model.min - v;
  model.value = Math.min(model.max, Math.max(model.min, v));
}

const print = (model: Model): string =>
  model.kind === 'enum' || model.integer
    ? String(Math.round(model.value))
    : String(Number(Math.fround(model.value).toPrecision(15)));

export function startGenerator(feed: ItemFeed, opts: GeneratorOptions = {}) {
  const now = opts.now ?? Date.now;
  const random = opts.random ?? Math.random;
  const rate = opts.rate ?? 1;
  if (!(rate > 0 && Number.isFinite(rate)))
    throw new Error(`generator rate must be a positive number, got ${rate}`);
  const catalogue = loadIssCatalogue();
  const ranges = loadIssRanges();
  const ids = (opts.items ?? catalogue.items.map((i) => i.id)).filter((id) => id !== ISS_CLOCK_ITEM);
  const items = [...new Set(ids)].map((id) => ({
    id,
    model: modelFor(catalogue.byId.get(id), ranges.get(id), random),
  }));
  const perTick = Math.max(1, Math.ceil(items.length / 10));
  let cursor = 0;
  let signal = true;

  const clock = (stamp: string): ItemUpdate => ({
    item: ISS_CLOCK_ITEM,
    fields: {
      TimeStamp: stamp,
      Value: stamp,
      'Status.Class': signal ? ISS_SIGNAL_CLASS : LOS_CLASS,
      'Status.Indicator': '',
      'Status.Color': signal ? 'Green' : 'Red',
      CalibratedData: '',
    },
  });
  const reading = (stamp: string, item: (typeof items)[number]): ItemUpdate => ({
    item: item.id,
    fields: {
      TimeStamp: stamp,
      Value: print(item.model),
      'Status.Class': ISS_SIGNAL_CLASS,
      'Status.Indicator': '',
      'Status.Color': 'Green',
      CalibratedData: '',
    },
  });

  const tick = () => {
    const stamp = formatIssTimestamp(now());
    const updates = [clock(stamp)];
    // No fresh telemetry while the station is out of contact: only the clock moves.
    if (signal) {
      for (let n = 0; n < Math.min(perTick, items.length); n++) {
        const item = items[cursor] as (typeof items)[number];
        cursor = (cursor + 1) % items.length;
        step(item.model, random);
        updates.push(reading(stamp, item));
      }
    }
    feed.publish(updates);
  };

  // Every item gets a value at once, so a snapshot has something to show from the start.
  const firstStamp = formatIssTimestamp(now());
  feed.publish([clock(firstStamp), ...items.map((i) => reading(firstStamp, i))]);
  const timer = setInterval(tick, 1_000 / rate);

  return {
    /** Acquisition (true) or loss (false) of signal, as the clock item's Status.Class reports it. */
    setSignal(acquired: boolean) {
      signal = acquired;
    },
    stop() {
      clearInterval(timer);
    },
  };
}
