/** What the ISSLIVE adapter set serves (tlcp.md §8): names shared by the source and the replay server. */

export const ISS_ADAPTER_SET = 'ISSLIVE';

/** Fields of every ISSLIVE item, in the order of the official demo's schema. */
export const ISS_FIELDS = [
  'TimeStamp',
  'Value',
  'Status.Class',
  'Status.Indicator',
  'Status.Color',
  'CalibratedData',
] as const;
export type IssField = (typeof ISS_FIELDS)[number];

/** One item's field values as the client exposes them (null when the server sent null or nothing yet). */
export type IssFieldValues = Readonly<Record<IssField, string | null>>;

/**
 * The clock item. Its `Status.Class` is `24` while the station has signal (AOS); any other class
 * means loss of signal, which the feed reports this way rather than as a disconnect.
 */
export const ISS_CLOCK_ITEM = 'TIME_000001';
export const ISS_SIGNAL_CLASS = '24';
