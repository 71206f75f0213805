/** Encodings of observation rows besides GeoJSON: CSV and CoverageJSON. */

export const CSV = 'text/csv; charset=utf-8';
export const COVJSON = 'application/prs.coverage+json';

/** One observation row as the read API has it from Postgres. */
export interface ItemRow {
  id: string;
  time: Date;
  station: string;
  sensor: string | null;
  variable: string;
  value: number | null;
  text: string | null;
  unit: string;
  lat: number | null;
  lon: number | null;
  alt: number | null;
  quality: string[] | null;
  source: string;
  edge: string;
}

/** A text a spreadsheet would run as a formula (OWASP "CSV injection"): = + - @ tab or CR first. */
const FORMULA_START = /^[=+\-@\t\r]/;
/** A plain number written as text (a negative value): a spreadsheet reads it as that number, no formula. */
const PLAIN_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/**
 * RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled. A text cell that a
 * spreadsheet would take for a formula (a station named `=HYPERLINK(...)`) gets a leading `'`, as
 * OWASP recommends; numbers, times and numeric text are written as they are.
 */
function field(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = v instanceof Date ? v.toISOString() : String(v);
  if (typeof v === 'string' && FORMULA_START.test(s) && !PLAIN_NUMBER.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** A CSV document with a header line; lines end in CRLF as RFC 4180 writes them. */
export function csv(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  return [header, ...rows].map((r) => `${r.map(field).join(',')}\r\n`).join('');
}

export const ITEM_CSV_COLUMNS = [
  'id',
  'time',
  'station',
  'sensor',
  'variable',
  'value',
  'text',
  'unit',
  'lon',
  'lat',
  'alt',
  'quality',
  'source',
  'edge',
] as const;

/** Items as CSV rows; `quality` flags are joined with `;`. */
export function itemsCsv(rows: readonly ItemRow[], idOf: (r: ItemRow) => string): string {
  return csv(
    ITEM_CSV_COLUMNS,
    rows.map((r) => [
      idOf(r),
      r.time,
      r.station,
      r.sensor,
      r.variable,
      r.value,
      r.text,
      r.unit,
      r.lon,
      r.lat,
      r.alt,
      r.quality?.join(';') ?? null,
      r.source,
      r.edge,
    ]),
  );
}

/**
 * A station's rows as one CoverageJSON PointSeries: the time axis is every distinct time, one
 * parameter per variable (per `variable/sensor` when several sensors of the station report the same
 * variable), its values aligned with the axis (null where it has none). Text readings have no
 * numeric value and are left out; the position is the station's latest known one.
 */
export function pointSeries(
  rows: readonly ItemRow[],
  at: { lon: number | null; lat: number | null },
): Record<string, unknown> {
  const times = [...new Set(rows.map((r) => r.time.getTime()))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const sensorsOf = new Map<string, Set<string>>();
  for (const r of rows) {
    const s = sensorsOf.get(r.variable) ?? new Set<string>();
    s.add(r.sensor ?? '');
    sensorsOf.set(r.variable, s);
  }
  const keyOf = (r: ItemRow) =>
    (sensorsOf.get(r.variable)?.size ?? 0) > 1 ? `${r.variable}/${r.sensor ?? ''}` : r.variable;
  const parameters: Record<string, unknown> = {};
  const ranges: Record<string, { values: (number | null)[] } & Record<string, unknown>> = {};
  for (const r of rows) {
    if (r.value === null) continue;
    const key = keyOf(r);
    let range = ranges[key];
    if (!range) {
      parameters[key] = {
        type: 'Parameter',
        description: { en: r.sensor ? `${r.variable} (sensor ${r.sensor})` : r.variable },
        unit: { symbol: r.unit },
        observedProperty: { id: r.variable, label: { en: r.variable } },
      };
      range = {
        type: 'NdArray',
        dataType: 'float',
        axisNames: ['t'],
        shape: [times.length],
        values: new Array<number | null>(times.length).fill(null),
      };
      ranges[key] = range;
    }
    range.values[index.get(r.time.getTime()) as number] = r.value;
  }
  return {
    type: 'Coverage',
    domain: {
      type: 'Domain',
      domainType: 'PointSeries',
      axes: {
        x: { values: [at.lon] },
        y: { values: [at.lat] },
        t: { values: times.map((t) => new Date(t).toISOString()) },
      },
      referencing: [
        {
          coordinates: ['x', 'y'],
          system: { type: 'GeographicCRS', id: 'http://www.opengis.net/def/crs/OGC/1.3/CRS84' },
        },
        { coordinates: ['t'], system: { type: 'TemporalRS', calendar: 'Gregorian' } },
      ],
    },
    parameters,
    ranges,
  };
}
