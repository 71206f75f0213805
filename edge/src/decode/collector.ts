import type { Reading } from '../readings.js';
import { classify } from './text.js';
import type { DecodeOutcome, SkippedField } from './types.js';
import { toCanonical } from './units.js';

export interface ReadingOptions {
  sensor?: string;
  timeMs?: number;
  quality?: readonly string[];
}

/** Limits of the wire Observation (protocol): a reading beyond them is skipped here, with the reason. */
const MAX_NAME = 200;
const MAX_TEXT = 4096;
const MAX_UNIT = 64;
/** Times outside years 1970..9999 cannot be written as the wire's ISO form. */
const MAX_TIME_MS = 253_402_300_799_999;

/**
 * Gathers one message's readings: converts numbers to their canonical unit, flags a missing unit
 * (`unit_unknown`), routes "no reading" markers to `skipped`, and applies the message's time.
 */
export class ReadingCollector {
  readonly readings: Reading[] = [];
  readonly skipped: SkippedField[] = [];

  constructor(private readonly defaults: { timeMs?: number; quality?: readonly string[] } = {}) {}

  /** A measured number in the unit the device sent (`''` when nobody knows it). */
  number(field: string, variable: string, value: number, unit: string, opts: ReadingOptions = {}): void {
    const c = toCanonical(value, unit);
    if (!Number.isFinite(c.value)) {
      this.skip(field, `value ${value} ${unit} is out of range`);
      return;
    }
    if (c.unit.length > MAX_UNIT) {
      this.skip(field, `unit longer than ${MAX_UNIT} characters`);
      return;
    }
    this.push(field, { variable, value: c.value, unit: c.unit }, opts, c.unit === '' ? ['unit_unknown'] : []);
  }

  /** A state or label (`ON`, `Normal`, `true`): stored as text, with no value. */
  text(field: string, variable: string, text: string, opts: ReadingOptions = {}): void {
    if (text.length > MAX_TEXT) {
      this.skip(field, `text longer than ${MAX_TEXT} characters`);
      return;
    }
    this.push(field, { variable, value: null, text, unit: '' }, opts, []);
  }

  skip(field: string, reason: string): void {
    this.skipped.push({ field, reason });
  }

  /** Any JSON value: numbers are measured, markers skipped, text kept, objects and arrays left out. */
  value(field: string, variable: string, raw: unknown, unit: string, opts: ReadingOptions = {}): void {
    const s = classify(raw);
    if (s.kind === 'number') this.number(field, variable, s.value, unit, opts);
    else if (s.kind === 'text') this.text(field, variable, s.text, opts);
    else if (s.kind === 'none') this.skip(field, `no reading: ${s.shown}`);
  }

  outcome(station?: string): DecodeOutcome {
    const out: DecodeOutcome = { kind: 'readings', readings: this.readings, skipped: this.skipped };
    if (station !== undefined && station !== '') out.station = station;
    return out;
  }

  private push(field: string, r: Reading, opts: ReadingOptions, flags: string[]): void {
    if (r.variable.length > MAX_NAME || (opts.sensor?.length ?? 0) > MAX_NAME) {
      this.skip(field, `variable or sensor name longer than ${MAX_NAME} characters`);
      return;
    }
    const timeMs = opts.timeMs ?? this.defaults.timeMs;
    const timeOk = timeMs === undefined || (Number.isInteger(timeMs) && timeMs >= 0 && timeMs <= MAX_TIME_MS);
    if (timeMs !== undefined && timeOk) r.timeMs = timeMs;
    if (!timeOk) flags.push('time_invalid');
    if (opts.sensor !== undefined && opts.sensor !== '') r.sensor = opts.sensor;
    const given = this.defaults.quality?.length ?? 0;
    // Most readings carry no flag: no set or arrays made for them (this runs for every reading).
    if (given > 0 || (opts.quality?.length ?? 0) > 0 || flags.length > 0) {
      r.quality = [...new Set([...(this.defaults.quality ?? []), ...(opts.quality ?? []), ...flags])];
    }
    this.readings.push(r);
  }
}

/** A status outcome with the `online` / `offline` vocabulary every family maps to. */
export function statusOutcome(state: string, station?: string): DecodeOutcome {
  const out: DecodeOutcome = { kind: 'status', state };
  if (station !== undefined && station !== '') out.station = station;
  return out;
}

/**
 * Availability payloads across firmwares (`online`, `Online`, `true`, `{"state":"online"}` parsed by
 * the caller) as `online` / `offline`; anything else is kept lower-cased so an operator sees it.
 */
export function availability(word: string): string {
  const w = word.trim().toLowerCase();
  if (w === 'online' || w === 'true' || w === '1') return 'online';
  if (w === 'offline' || w === 'false' || w === '0') return 'offline';
  return w;
}
