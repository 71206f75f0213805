import { describe, expect, it } from 'vitest';
import { csv, type ItemRow, pointSeries } from './formats.js';

const row = (over: Partial<ItemRow>): ItemRow => ({
  id: 'a'.repeat(64),
  time: new Date('2026-12-05T10:00:00Z'),
  station: 'st-1',
  sensor: null,
  variable: 'air_temperature',
  value: 1,
  text: null,
  unit: 'degC',
  lat: 46,
  lon: 7,
  alt: null,
  quality: null,
  source: 'mqtt',
  edge: 'gw-1',
  ...over,
});

describe('CSV', () => {
  it('quotes what RFC 4180 asks, leaves empty what is null, ends lines in CRLF', () => {
    expect(
      csv(
        ['a', 'b', 'c'],
        [
          ['x,y', 'say "hi"', null],
          [1.5, 'two\nlines', new Date(0)],
        ],
      ),
    ).toBe('a,b,c\r\n"x,y","say ""hi""",\r\n1.5,"two\nlines",1970-01-01T00:00:00.000Z\r\n');
  });

  it("prefixes text a spreadsheet would run as a formula with ', and leaves numbers as they are", () => {
    const cells = ['=1+1', '+cmd', '-2+3', '@SUM(A1)', '\tx', '\rx', '=HYPERLINK("http://evil")'];
    expect(
      csv(
        ['t'],
        cells.map((c) => [c]),
      ),
    ).toBe(
      `t\r\n'=1+1\r\n'+cmd\r\n'-2+3\r\n'@SUM(A1)\r\n'\tx\r\n"'\rx"\r\n"'=HYPERLINK(""http://evil"")"\r\n`,
    );
    // Numbers, numeric text (an aggregate Postgres returns as text), times and a later = are no formulas.
    expect(csv(['v'], [[-1.5], ['-1.5'], ['+2e3'], [new Date(0)], ['a=b']])).toBe(
      'v\r\n-1.5\r\n-1.5\r\n+2e3\r\n1970-01-01T00:00:00.000Z\r\na=b\r\n',
    );
  });
});

describe('CoverageJSON point series', () => {
  it('aligns each variable to one time axis, null where it has no value, text left out', () => {
    const t = (m: number) => new Date(Date.UTC(2026, 11, 5, 10, m));
    const cov = pointSeries(
      [
        row({ time: t(0), value: 1 }),
        row({ time: t(0), variable: 'relative_humidity', unit: '%', value: 80 }),
        row({ time: t(10), value: 2 }),
        row({ time: t(20), variable: 'relative_humidity', unit: '%', value: 78 }),
        row({ time: t(20), variable: 'weather', value: null, text: 'rain' }),
      ],
      { lon: 7, lat: 46 },
    ) as {
      domain: { axes: { t: { values: string[] }; x: { values: number[] } } };
      parameters: Record<string, { unit: { symbol: string } }>;
      ranges: Record<string, { values: (number | null)[]; shape: number[] }>;
    };
    expect(cov.domain.axes.t.values).toEqual([t(0), t(10), t(20)].map((d) => d.toISOString()));
    expect(cov.domain.axes.x.values).toEqual([7]);
    expect(Object.keys(cov.ranges)).toEqual(['air_temperature', 'relative_humidity']);
    expect(cov.ranges.air_temperature?.values).toEqual([1, 2, null]);
    expect(cov.ranges.relative_humidity?.values).toEqual([80, null, 78]);
    expect(cov.ranges.relative_humidity?.shape).toEqual([3]);
    expect(cov.parameters.relative_humidity?.unit.symbol).toBe('%');
  });

  it('splits a variable that several sensors report into one parameter per sensor', () => {
    const cov = pointSeries([row({ sensor: 'north', value: 1 }), row({ sensor: 'south', value: 2 })], {
      lon: 7,
      lat: 46,
    }) as { ranges: Record<string, { values: (number | null)[] }> };
    expect(cov.ranges).toMatchObject({
      'air_temperature/north': { values: [1] },
      'air_temperature/south': { values: [2] },
    });
  });
});
