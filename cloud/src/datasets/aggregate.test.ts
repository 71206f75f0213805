import { describe, expect, it } from 'vitest';
import {
  type AggregatedDef,
  aggregateColumns,
  aggregateFrom,
  alignToIntervals,
  isAggregated,
} from './aggregate.js';
import { parseDatasets } from './dataset-config.js';

const [agg, raw] = parseDatasets({
  datasets: [
    {
      name: 'agg',
      window: 'PT1H',
      filter: { variables: ['air_temperature'] },
      aggregate: { every: 'PT10M', stats: ['count', 'last'], exclude_flags: ["it's"] },
    },
    { name: 'raw', window: 'PT1H' },
  ],
});
const def = agg as AggregatedDef;
const at = (s: string) => new Date(`2026-12-05T${s}Z`);

describe('aggregated datasets', () => {
  it('knows which datasets aggregate', () => {
    expect(isAggregated(def)).toBe(true);
    expect(raw && isAggregated(raw)).toBe(false);
  });
  it('lists the statistics in the order asked, text columns only with first/last', () => {
    expect(aggregateColumns(def)).toEqual([
      'time',
      'time_end',
      'station',
      'sensor',
      'variable',
      'unit',
      'lat',
      'lon',
      'alt',
      'count',
      'last',
      'last_text',
      'flagged',
      'excluded',
    ]);
  });
  it('widens a time range to the whole intervals it touches', () => {
    expect(alignToIntervals(def, at('10:05:00'), at('10:20:00'))).toEqual({
      start: at('10:00:00'),
      end: at('10:20:00'),
    });
    expect(alignToIntervals(def, at('10:05:00'), at('10:20:00.001'))).toEqual({
      start: at('10:00:00'),
      end: at('10:30:00'),
    });
  });
  it('binds every value of the read API source and quotes the configured flags', () => {
    const values: unknown[] = [];
    const sql = aggregateFrom(def, { from: at('10:05:00'), to: at('10:20:00') }, (v) => {
      values.push(v);
      return `$${values.length}`;
    });
    // `to` is inclusive: the interval starting at 10:20 is in.
    expect(values).toEqual([['air_temperature'], at('10:00:00'), at('10:30:00')]);
    expect(sql).toContain("ARRAY['it''s']::text[]");
    expect(sql).toMatch(/\) AS observations$/);
  });
});
