import type { Observation } from '@fieldbeam/protocol';
import { describe, expect, it } from 'vitest';
import { encodeRows, rowCount, rowObservation, sliceRows, withSeq } from './copy-binary.js';
import { OBSERVATION_FIELDS } from './observation-fields.js';

const base: Observation = {
  id: 'a'.repeat(64),
  source: 'mqtt',
  edge: 'gw-1',
  station: 'stätion\t1',
  variable: 'air_temperature',
  value: -12.5,
  unit: 'degC',
  time: '2026-11-30T12:34:56.789Z',
  received: '1999-12-31T23:59:59.999Z',
  lat: 46.5,
  quality: ['spike', 'a"b\\c', '✓'],
  trace: '0af7651916cd43dd8448eb211c80319c',
};

describe('binary COPY rows', () => {
  it('reads back what it wrote, field by field, times exact to the millisecond', () => {
    const obs: Observation[] = [
      base,
      { ...base, id: 'b'.repeat(64), value: null, text: 'open', quality: [], lat: undefined },
      { ...base, id: 'c'.repeat(64), time: '2026-02-28T00:00:00.000Z', quality: undefined, trace: undefined },
    ];
    const rows = encodeRows(obs);
    expect(rowCount(rows)).toBe(3);
    expect(rows.months.sort()).toEqual(['2026-02', '2026-11']);
    for (let i = 0; i < obs.length; i++) {
      const want = Object.fromEntries(
        Object.entries(obs[i] as Observation).filter(([, v]) => v !== undefined),
      );
      expect(rowObservation(rows, i)).toEqual(want);
    }
  });

  it('writes the microseconds since 2000 as Postgres does, before and after that epoch', () => {
    for (const time of [
      '2000-01-01T00:00:00.000Z',
      '1970-01-01T00:00:00.001Z',
      '2024-02-29T23:59:59.999Z',
      '2099-12-31T23:59:59.999Z',
    ]) {
      const rows = encodeRows([{ ...base, time }]);
      const b = Buffer.from(rows.bytes);
      // The time field follows the count (2 bytes) and the id (4 + 64 bytes).
      const at = 2 + 4 + 64;
      expect(b.readInt32BE(at)).toBe(8);
      expect(b.readBigInt64BE(at + 4)).toBe((BigInt(Date.parse(time)) - 946_684_800_000n) * 1000n);
    }
  });

  it('agrees with Date.parse on random times from 1970 to 2100', () => {
    const times = Array.from({ length: 2000 }, () =>
      new Date(Math.floor(Math.random() * 4_102_444_800_000)).toISOString(),
    );
    const rows = encodeRows(times.map((time) => ({ ...base, time })));
    const b = Buffer.from(rows.bytes);
    times.forEach((time, i) => {
      const at = (rows.offsets[i] as number) + 2 + 4 + 64 + 4;
      expect(b.readBigInt64BE(at), time).toBe((BigInt(Date.parse(time)) - 946_684_800_000n) * 1000n);
    });
  });

  it('slices rows and adds a leading seq field for the staging table', () => {
    const obs = ['1', '2', '3'].map((c) => ({ ...base, id: c.repeat(64) }));
    const rows = encodeRows(obs);
    const mid = sliceRows(rows, 1, 3);
    expect(rowCount(mid)).toBe(2);
    expect(rowObservation(mid, 0).id).toBe('2'.repeat(64));
    const staged = withSeq(mid, 2 ** 40 + 7);
    expect(staged.readInt16BE(0)).toBe(OBSERVATION_FIELDS.length + 1);
    expect(staged.readInt32BE(2)).toBe(8);
    expect(staged.readBigInt64BE(6)).toBe(2n ** 40n + 7n);
    expect(staged.length).toBe(mid.bytes.length + 2 * 12);
  });
});
