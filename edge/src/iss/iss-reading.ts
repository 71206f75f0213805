import type { Reading } from '../readings.js';
import { parseIssTimestamp } from './iss-timestamp.js';
import { ISS_SIGNAL_CLASS, type IssFieldValues } from './isslive-schema.js';

/** The observation schema's limits on `text` and on each `quality` flag. */
const MAX_TEXT = 4096;
const MAX_FLAG = 64;

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Observation variable of an ISSLIVE item. */
export const issVariable = (item: string) => `iss:${item}`;

/** Whether a clock (`TIME_000001`) update says the station has signal. */
export const hasSignal = (fields: IssFieldValues) => fields['Status.Class'] === ISS_SIGNAL_CLASS;

const flag = (name: string, value: string | null) =>
  value === null || value === '' ? [] : [`${name}:${value}`.slice(0, MAX_FLAG)];

/** Longest `Value` accepted; ISSLIVE values are short numbers or enumeration words. */
export const MAX_ISS_VALUE = 1024;

/**
 * Why an update cannot become a reading, or undefined when it can. Such updates are quarantined:
 * an unreadable TimeStamp would force receipt time, and with it a new id on every snapshot.
 */
export function checkIssUpdate(
  item: string,
  fields: IssFieldValues,
  catalogue: ReadonlyMap<string, unknown>,
  nowMs: number,
): string | undefined {
  if (!catalogue.has(item)) return `unknown ISSLIVE item "${item.slice(0, 64)}" (not in the catalogue)`;
  const ts = fields.TimeStamp;
  if (ts !== null && ts.trim() !== '' && parseIssTimestamp(ts, nowMs) === undefined) {
    return `unreadable TimeStamp "${ts.slice(0, 40)}" (expected hours since the start of the year)`;
  }
  const value = fields.Value;
  if (value !== null && value.length > MAX_ISS_VALUE) {
    return `Value of ${value.length} characters exceeds ${MAX_ISS_VALUE}`;
  }
  return undefined;
}

/**
 * Turns one ISSLIVE item update into a reading, or `undefined` when `Value` is null or empty
 * (nothing was measured).
 *
 * `Value` becomes the number when it reads as a plain decimal, else `text`: enumerations arrive as
 * numeric codes and stay numbers. Time comes from `TimeStamp` (never from receipt), so the same
 * update re-sent in a later snapshot yields the same observation id; only when it is missing or
 * unreadable does the receipt time stand in (and `toObservation` flags it `edge_time`). The status
 * fields ride along as quality flags, which are not part of the id.
 */
export function toIssReading(
  item: string,
  fields: IssFieldValues,
  opts: { unit: string; nowMs: number },
): Reading | undefined {
  const raw = fields.Value;
  if (raw === null || raw.trim() === '') return undefined;
  const trimmed = raw.trim();
  const numeric = NUMBER.test(trimmed) ? Number(trimmed) : undefined;
  const quality = [
    ...flag('status_class', fields['Status.Class']),
    ...flag('status_indicator', fields['Status.Indicator']),
    ...flag('status_color', fields['Status.Color']),
  ];
  const reading: Reading = {
    variable: issVariable(item),
    value: numeric !== undefined && Number.isFinite(numeric) ? numeric : null,
    unit: opts.unit,
  };
  if (reading.value === null) {
    reading.text = raw.slice(0, MAX_TEXT);
    if (raw.length > MAX_TEXT) quality.push('text_truncated');
  }
  const timeMs = parseIssTimestamp(fields.TimeStamp, opts.nowMs);
  if (timeMs !== undefined) reading.timeMs = timeMs;
  if (quality.length > 0) reading.quality = quality;
  return reading;
}
