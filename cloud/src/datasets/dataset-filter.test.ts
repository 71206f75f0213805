import { describe, expect, it } from 'vitest';
import { bindTo, datasetConditions, datasetWhere, inlineLiteral } from './dataset-filter.js';

const at = (iso: string) => new Date(iso);

describe('dataset filter', () => {
  const def = { filter: { stations: ["it's"], variables: ['air_temperature', 'wind'] } };

  it('binds every value, the dataset selection first, then the time range', () => {
    const values: unknown[] = [];
    const where = datasetConditions(def, bindTo(values), {
      from: at('2026-11-30T10:00:00Z'),
      to: at('2026-11-30T11:00:00Z'),
    });
    expect(where).toEqual([
      'station = ANY($1::text[])',
      'variable = ANY($2::text[])',
      'time >= $3',
      'time < $4',
    ]);
    expect(values).toEqual([
      ["it's"],
      ['air_temperature', 'wind'],
      at('2026-11-30T10:00:00Z'),
      at('2026-11-30T11:00:00Z'),
    ]);
  });

  it('includes the end when asked (the read API), excludes it otherwise (windows)', () => {
    const values: unknown[] = [];
    expect(
      datasetConditions({ filter: {} }, bindTo(values), { to: at('2026-11-30T11:00:00Z'), toIncluded: true }),
    ).toEqual(['time <= $1']);
  });

  it('writes the same conditions as quoted literals for statements without parameters', () => {
    expect(datasetWhere(def, inlineLiteral, { from: at('2026-11-30T10:00:00Z') })).toBe(
      "station = ANY(ARRAY['it''s']::text[]::text[]) AND variable = ANY(ARRAY['air_temperature', 'wind']::text[]::text[])" +
        " AND time >= '2026-11-30T10:00:00.000Z'::timestamptz",
    );
  });

  it('takes every observation without a filter or range', () => {
    expect(datasetWhere({ filter: {} }, inlineLiteral)).toBe('true');
  });

  it('refuses values it cannot write as a literal', () => {
    expect(() => inlineLiteral({})).toThrow(/cannot write object/);
    expect(() => inlineLiteral(Number.NaN)).toThrow();
  });
});
