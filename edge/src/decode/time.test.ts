import { describe, expect, it } from 'vitest';
import { epochToMs, isTimeZone, parseTime, readTime, wallToUtc } from './time.js';

const utc = (iso: string) => Date.parse(iso);

describe('parseTime', () => {
  it.each([
    ['2019-12-14T15:38:56.796Z', '2019-12-14T15:38:56.796Z'],
    ['2022-03-06T11:52:35+01:00', '2022-03-06T10:52:35.000Z'],
    ['2024-02-21T21:16:55.911+01:00', '2024-02-21T20:16:55.911Z'],
    ['2022-09-14T09:14:17+0200', '2022-09-14T07:14:17.000Z'],
    ['2015-04-05 22:10:10+02:00', '2015-04-05T20:10:10.000Z'],
    ['2020-02-12T15:15:46.014773143Z', '2020-02-12T15:15:46.014Z'],
    ['2021-01-01T00:00:00-05:30', '2021-01-01T05:30:00.000Z'],
  ])('reads %s as UTC', (text, iso) => {
    expect(parseTime(text)).toEqual({ kind: 'utc', ms: utc(iso) });
  });

  it.each([
    [1765292604979, '2025-12-09T15:03:24.979Z'], // zigbee2mqtt last_seen: epoch ms
    [1567595328, '2019-09-04T11:08:48.000Z'], // Tasmota Epoch: seconds
    [1669541352.21, '2022-11-27T09:29:12.210Z'], // Shelly ts: fractional seconds
    ['1706856298', '2024-02-02T06:44:58.000Z'], // numeric string
    [1706856298000000, '2024-02-02T06:44:58.000Z'], // µs
  ])('reads epoch %s by magnitude', (raw, iso) => {
    expect(parseTime(raw)).toEqual({ kind: 'utc', ms: utc(iso) });
  });

  it('keeps a time without offset as a wall-clock time, not as UTC', () => {
    expect(parseTime('2019-11-03T19:34:28')).toEqual({ kind: 'local', wallMs: utc('2019-11-03T19:34:28Z') });
    expect(parseTime('2018.02.01 22:52:09')).toEqual({ kind: 'local', wallMs: utc('2018-02-01T22:52:09Z') });
    expect(parseTime('2019-04-25 01:51:12')).toEqual({ kind: 'local', wallMs: utc('2019-04-25T01:51:12Z') });
  });

  it('treats empty and missing as no time, and rejects nonsense with a reason', () => {
    expect(parseTime('')).toEqual({ kind: 'none' });
    expect(parseTime(null)).toEqual({ kind: 'none' });
    expect(parseTime(undefined)).toEqual({ kind: 'none' });
    expect(parseTime('2024-02-31T10:00:00Z').kind).toBe('invalid');
    expect(parseTime('2024-01-01T24:00:00Z').kind).toBe('invalid');
    // Month 13 and month 0 would roll into the next or previous year without a month check.
    expect(parseTime('2026-13-01T00:00:00Z')).toEqual({
      kind: 'invalid',
      reason: '"2026-13-01T00:00:00Z" is not a valid date',
    });
    expect(parseTime('2026-00-10T00:00:00Z').kind).toBe('invalid');
    expect(parseTime('2026-13-45T25:61:61.000Z').kind).toBe('invalid');
    expect(parseTime('18/08/2022 02:10').kind).toBe('invalid');
    expect(parseTime('0T18:36:12').kind).toBe('invalid');
    expect(parseTime(0).kind).toBe('invalid');
    expect(parseTime(-5).kind).toBe('invalid');
    expect(parseTime({}).kind).toBe('invalid');
  });
});

describe('epochToMs', () => {
  it('tells seconds, ms, µs and ns apart', () => {
    expect(epochToMs(1_700_000_000)).toBe(1_700_000_000_000);
    expect(epochToMs(1_700_000_000_000)).toBe(1_700_000_000_000);
    expect(epochToMs(1_700_000_000_000_000)).toBe(1_700_000_000_000);
    expect(epochToMs(1_700_000_000_000_000_000)).toBe(1_700_000_000_000);
    expect(epochToMs(Number.NaN)).toBeUndefined();
  });
});

describe('readTime (the time policy)', () => {
  it('gives UTC times as sensor time', () => {
    expect(readTime('2021-06-27T15:03:44+02:00')).toEqual({
      timeMs: utc('2021-06-27T13:03:44Z'),
      quality: [],
    });
  });

  it('does not guess the offset of a local time: no sensor time, flagged', () => {
    expect(readTime('2019-11-03T19:34:28')).toEqual({ quality: ['time_offset_unknown'] });
  });

  it('places a local time exactly when the device zone is configured, across DST', () => {
    expect(readTime('2019-11-03T19:34:28', { timeZone: 'Europe/Berlin' }).timeMs).toBe(
      utc('2019-11-03T18:34:28Z'),
    );
    expect(readTime('2021-07-01T12:00:00', { timeZone: 'Europe/Berlin' }).timeMs).toBe(
      utc('2021-07-01T10:00:00Z'),
    );
    expect(readTime('2021-07-01T12:00:00', { timeZone: 'America/New_York' }).timeMs).toBe(
      utc('2021-07-01T16:00:00Z'),
    );
    expect(readTime('2021-07-01T12:00:00', { timeZone: 'UTC' }).timeMs).toBe(utc('2021-07-01T12:00:00Z'));
  });

  it('flags a clock that never synced instead of using 1970', () => {
    expect(readTime('1970-01-01T00:00:12')).toEqual({ quality: ['clock_unsynced'] });
    expect(readTime(12)).toEqual({ quality: ['clock_unsynced'] });
  });

  it('flags an unreadable time', () => {
    expect(readTime('yesterday')).toEqual({ quality: ['time_invalid'] });
    expect(readTime(undefined)).toEqual({ quality: [] });
  });
});

describe('time zones', () => {
  it('validates IANA names', () => {
    expect(isTimeZone('Europe/Berlin')).toBe(true);
    expect(isTimeZone('Mars/Olympus')).toBe(false);
  });

  it('resolves a wall time in the autumn DST overlap to its first occurrence', () => {
    // 2021-10-31 02:30 happens twice in Berlin: first at +02:00 (00:30Z).
    expect(wallToUtc(utc('2021-10-31T02:30:00Z'), 'Europe/Berlin')).toBe(utc('2021-10-31T00:30:00Z'));
  });
});
