import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { type Collector, createCollector, loadCloudConfig } from '@fieldbeam/cloud';
import type { Observation } from '@fieldbeam/protocol';
import { observationId } from '@fieldbeam/protocol';
import { Validator } from '@seriousme/openapi-schema-validator';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type NatsServer,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';
import { publishObservations, reading, stationPosition } from './fixtures.js';

/**
 * The read API as standard clients use it: GDAL's OGC API - Features client (Debian's gdal-bin:
 * ogrinfo and ogr2ogr with `OAPIF:`) against a collector with built windows, the OpenAPI document
 * checked by an OpenAPI 3 schema validator and every path it lists asked, and the EDR locations,
 * CSV and GeoParquet answers compared with SQL over the same rows.
 */
const run = promisify(execFile);
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const H = 3_600_000;
const T0 = Date.parse('2026-01-10T10:00:00.000Z');
const STATIONS = 3;
/** Small, so that GDAL and the tests page through several `next` links. */
const MAX_LIMIT = 40;

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let db: pg.Pool;
let collector: Collector;
let base: string;
const api = (path: string) => fetch(`${base}${path}`);
const json = async <T>(path: string): Promise<T> => {
  const r = await api(path);
  expect(r.status, path).toBe(200);
  return (await r.json()) as T;
};

/** Two hours of air temperature and humidity at each station every 5 min, one text reading, one station without a position. */
function readings(): Observation[] {
  const out: Observation[] = [];
  for (let s = 0; s < STATIONS; s++) {
    for (let t = T0; t < T0 + 2 * H; t += 5 * 60_000) {
      out.push(reading({ edge: 'gw-api', station: s, time: t, value: 10 + s + (t - T0) / H }));
      out.push(
        reading({
          edge: 'gw-api',
          station: s,
          time: t,
          value: 50 + s,
          variable: 'relative_humidity',
          unit: '%',
        }),
      );
    }
  }
  const time = new Date(T0 + 30 * 60_000).toISOString();
  out.push({
    id: observationId({
      source: 'mqtt',
      station: 'st-0',
      variable: 'weather',
      time,
      value: null,
      text: 'rain, "heavy"',
    }),
    source: 'mqtt',
    edge: 'gw-api',
    station: 'st-0',
    variable: 'weather',
    value: null,
    text: 'rain, "heavy"',
    unit: '1',
    time,
    received: time,
    ...stationPosition(0),
  });
  out.push(reading({ edge: 'gw-api', station: 9, time: T0 + 60_000, value: 1, noPosition: true }));
  // A station id with a space, quotes and non-ASCII letters: paths, CSV and file names must cope.
  const odd = new Date(T0 + 2 * 60_000).toISOString();
  out.push({
    id: observationId({
      source: 'mqtt',
      station: ODD_STATION,
      variable: 'air_temperature',
      time: odd,
      value: 2,
    }),
    source: 'mqtt',
    edge: 'gw-api',
    station: ODD_STATION,
    variable: 'air_temperature',
    value: 2,
    unit: 'degC',
    time: odd,
    received: odd,
  });
  return out;
}

const ODD_STATION = 'Zürich "Nord", 2';
const COLLECTIONS = ['temperature', 'all', 'temperature_10min'] as const;
/** What SQL says each collection holds: raw rows, or for the aggregated one its series' intervals. */
const SQL_COUNT: Record<(typeof COLLECTIONS)[number], string> = {
  temperature: "SELECT count(*) AS n FROM observations WHERE variable = 'air_temperature'",
  all: 'SELECT count(*) AS n FROM observations',
  temperature_10min: `SELECT count(*) AS n FROM (SELECT DISTINCT date_bin('10 minutes', time, 'epoch'), station, sensor,
    variable, unit FROM observations WHERE variable = 'air_temperature') g`,
};
const sqlCount = async (collection: (typeof COLLECTIONS)[number]) =>
  Number((await db.query<{ n: string }>(SQL_COUNT[collection])).rows[0]?.n);

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  db = new pg.Pool({ connectionString: postgres.url });
  db.on('error', () => {});
  dir = tempDir();
  writeFileSync(
    join(dir.path, 'datasets.yaml'),
    `datasets:
  - name: temperature
    title: Air temperature
    filter: { variables: [air_temperature] }
    window: PT1H
    grace: PT1S
    debounce: PT0.3S
  - name: all
    window: PT1H
    grace: PT1S
    debounce: PT0.3S
  - name: temperature_10min
    filter: { variables: [air_temperature] }
    window: PT1H
    grace: PT1S
    debounce: PT0.3S
    aggregate: { every: PT10M, stats: [mean, min, max, count] }
`,
  );
  collector = await createCollector(
    loadCloudConfig({
      NATS_URL: nats.url,
      DATABASE_URL: postgres.url,
      FB_DATA_DIR: join(dir.path, 'collector'),
      FB_HTTP_HOST: '127.0.0.1',
      FB_HTTP_PORT: '0',
      FB_DATASETS_FILE: join(dir.path, 'datasets.yaml'),
      FB_BUILD_POLL_MS: '200',
      FB_API_MAX_LIMIT: String(MAX_LIMIT),
      // The readings carry fixed dates in January 2026.
      FB_INGEST_MAX_AGE: 'P36500D',
      LOG_LEVEL: 'silent',
    }),
    log,
  );
  base = `http://127.0.0.1:${collector.httpPort}`;
  const all = readings();
  await publishObservations(nats.url, 'gw-api', all);
  // Twenty days before the rest, in a batch of its own (a batch marks every window its times span):
  // pages of an aggregated collection cross the gap.
  const early = reading({ edge: 'gw-old', station: 0, time: T0 - 20 * 24 * H, value: -3 });
  await publishObservations(nats.url, 'gw-old', [early]);
  all.push(early);
  await waitFor('every reading stored', async () =>
    (await sqlCount('all')) === all.length ? true : undefined,
  );
  await waitFor(
    'every window built and exported in every dataset',
    async () => {
      const r = await db.query<{ n: string; files: string }>(
        `SELECT count(*) AS n, (SELECT count(*) FROM dataset_exports WHERE key LIKE '%.parquet') AS files
         FROM dataset_windows WHERE final AND version IS NOT NULL AND built_generation = generation`,
      );
      if (Number(r.rows[0]?.files) < 9) return undefined;
      return Number(r.rows[0]?.n) === 9 ? true : undefined;
    },
    60_000,
  );
});

afterAll(async () => {
  await collector?.close();
  await db?.end();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

describe('GDAL OGC API - Features client (ogrinfo, ogr2ogr)', () => {
  it('ogrinfo lists every collection without an error line', async () => {
    const { stdout, stderr } = await run('ogrinfo', ['-ro', '-q', `OAPIF:${base}`], { timeout: 60_000 });
    expect(stderr).not.toMatch(/ERROR|Warning/i);
    for (const c of COLLECTIONS) expect(stdout).toMatch(new RegExp(`^\\d+: ${c}\\b`, 'm'));
    // GDAL read the API definition (it asks /api first and takes the page size from it).
    const layer = await run('ogrinfo', ['-ro', '-so', `OAPIF:${base}`, 'temperature'], { timeout: 60_000 });
    expect(layer.stderr).not.toMatch(/ERROR/i);
    expect(layer.stdout).toMatch(/Geometry: Point/);
  });

  it.each(COLLECTIONS)('ogr2ogr exports collection %s with as many features as SQL has rows', async (c) => {
    const out = join(dir.path, `${c}.geojson`);
    const { stderr } = await run('ogr2ogr', ['-f', 'GeoJSON', out, `OAPIF:${base}`, c], { timeout: 120_000 });
    expect(stderr).not.toMatch(/ERROR/i);
    const exported = JSON.parse(readFileSync(out, 'utf8')) as {
      features: { properties: Record<string, unknown> }[];
    };
    expect(exported.features.length).toBe(await sqlCount(c));
    // Pages were followed without a row lost or repeated.
    expect(new Set(exported.features.map((f) => JSON.stringify(f.properties))).size).toBe(
      exported.features.length,
    );
    if (c === 'temperature_10min') {
      // Each interval's statistics are SQL's over its raw rows.
      const sql = await db.query<{
        t: Date;
        station: string;
        mean: number;
        min: number;
        max: number;
        n: number;
      }>(
        `SELECT date_bin('10 minutes', time, 'epoch') AS t, station, avg(value) AS mean, min(value) AS min,
                max(value) AS max, count(*)::int AS n
         FROM observations WHERE variable = 'air_temperature' GROUP BY 1, 2`,
      );
      const byKey = new Map(sql.rows.map((r) => [`${r.t.toISOString()} ${r.station}`, r]));
      for (const f of exported.features) {
        const p = f.properties as {
          time: string;
          station: string;
          mean: number;
          min: number;
          max: number;
          count: number;
        };
        const want = byKey.get(`${new Date(p.time).toISOString()} ${p.station}`);
        expect(want, `${p.time} ${p.station}`).toBeDefined();
        expect(p.mean).toBeCloseTo(want?.mean ?? Number.NaN, 9);
        expect([p.min, p.max, p.count]).toEqual([want?.min, want?.max, want?.n]);
      }
    }
  });
});

interface OpenApi {
  paths: Record<
    string,
    {
      get: {
        parameters: { name: string; in: string; required: boolean; example?: string }[];
        responses: Record<string, { content?: Record<string, unknown> }>;
      };
    }
  >;
}

describe('OpenAPI definition', () => {
  it('is linked from the landing page as service-desc and validates against the OpenAPI 3 schema', async () => {
    const landing = await json<{ links: { rel: string; href: string; type: string }[] }>('/');
    const desc = landing.links.find((l) => l.rel === 'service-desc');
    expect(desc?.type).toBe('application/vnd.oai.openapi+json;version=3.0');
    const r = await fetch(desc?.href ?? '');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/vnd.oai.openapi+json;version=3.0');
    const doc = (await r.json()) as Record<string, unknown>;
    const result = await new Validator().validate(doc);
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    expect(result.valid).toBe(true);
    const conformance = await json<{ conformsTo: string[] }>('/conformance');
    expect(conformance.conformsTo).toContain('http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30');
  });

  it.each(['temperature', 'temperature_10min'])(
    'every path it lists answers 200 with a declared media type, with the example parameters (%s)',
    async (c) => {
      const doc = await json<OpenApi>('/api');
      // Path parameters come from the live data, as a client would find them.
      const items = await json<{ features: { id: string }[] }>(`/collections/${c}/items?limit=1`);
      const windows = await json<{ windows: { start: string }[] }>(`/collections/${c}/windows`);
      const window = windows.windows[0]?.start ?? '';
      const files = await json<{ versions: { links: { href: string }[] }[] }>(
        `/collections/${c}/windows/${window}`,
      );
      const file = files.versions[0]?.links[0]?.href.split('/').at(-1) ?? '';
      const values: Record<string, string> = {
        collectionId: c,
        featureId: items.features[0]?.id ?? '',
        locationId: 'st-1',
        window,
        file,
      };
      const paths = Object.keys(doc.paths);
      expect(paths).toEqual(
        expect.arrayContaining([
          '/api',
          '/collections/{collectionId}/items/{featureId}',
          '/collections/{collectionId}/locations',
          '/collections/{collectionId}/locations/{locationId}',
        ]),
      );
      for (const [path, { get }] of Object.entries(doc.paths)) {
        const target = path.replace(/\{(\w+)\}/g, (_, name: string) =>
          encodeURIComponent(values[name] ?? ''),
        );
        const declared = Object.keys(get.responses['200']?.content ?? {});
        const required = get.parameters.filter((p) => p.in === 'query' && p.required);
        const withExamples = get.parameters.filter((p) => p.in === 'query' && p.example !== undefined);
        for (const params of [required, withExamples]) {
          const query = new URLSearchParams(params.map((p): [string, string] => [p.name, p.example ?? '']));
          const url = `${target}${query.size ? `?${query}` : ''}`;
          const r = await api(url);
          expect(r.status, `${url}: ${r.status === 200 ? '' : await r.text()}`).toBe(200);
          expect(declared, url).toContain(r.headers.get('content-type'));
          await r.arrayBuffer();
        }
        // Every `f` it declares answers in that encoding (parquet needs a closed datetime).
        const f = get.parameters.find((p) => p.name === 'f') as { schema?: { enum?: string[] } } | undefined;
        for (const format of f?.schema?.enum ?? []) {
          const query = new URLSearchParams(required.map((p): [string, string] => [p.name, p.example ?? '']));
          query.set('f', format);
          if (format === 'parquet')
            query.set('datetime', `${new Date(T0).toISOString()}/${new Date(T0 + H).toISOString()}`);
          const r = await api(`${target}?${query}`);
          if (r.status !== 200) {
            // Only parquet may be refused, and only where it is not offered.
            expect(format, `${target}?${query}: ${await r.text()}`).toBe('parquet');
            expect(r.status).toBe(400);
            continue;
          }
          expect(declared, `${target}?${query}`).toContain(r.headers.get('content-type'));
          await r.arrayBuffer();
        }
      }
    },
  );
});

describe('OGC API behaviour clients rely on', () => {
  interface Fc {
    numberReturned: number;
    features: { id: string; properties: Record<string, unknown>; geometry: unknown }[];
    links: { rel: string; href: string; title?: string }[];
  }

  it('a limit above the maximum is reduced to it, and the answer says so', async () => {
    const page = await json<Fc>('/collections/all/items?limit=100000');
    expect(page.numberReturned).toBe(MAX_LIMIT);
    expect(page.features.length).toBe(MAX_LIMIT);
    const self = page.links.find((l) => l.rel === 'self');
    expect(self?.title).toBe(`limit 100000 reduced to ${MAX_LIMIT}, the largest page`);
    expect(page.links.find((l) => l.rel === 'next')?.href).toContain(`limit=${MAX_LIMIT}`);
    for (const bad of ['0', '-5', '1e3', 'ten']) {
      expect((await api(`/collections/all/items?limit=${bad}`)).status, bad).toBe(400);
    }
  });

  it('one feature by its id, the same as in the items; unknown ids 404, malformed ones 400', async () => {
    const page = await json<Fc>('/collections/temperature/items?limit=3');
    for (const f of page.features) {
      const one = await json<Fc['features'][number] & { links: { rel: string }[] }>(
        `/collections/temperature/items/${encodeURIComponent(f.id)}`,
      );
      expect({ ...one, links: undefined }).toEqual({ ...f, links: undefined });
      expect(one.links.map((l) => l.rel)).toEqual(['self', 'collection']);
    }
    const other = (page.features[0]?.id ?? '').replace(/_[0-9a-f]{64}_/, `_${'0'.repeat(64)}_`);
    expect((await api(`/collections/temperature/items/${other}`)).status).toBe(404);
    // A humidity row is not a feature of the temperature collection.
    const hum = await json<Fc>('/collections/all/items?parameter-name=relative_humidity&limit=1');
    expect((await api(`/collections/temperature/items/${hum.features[0]?.id}`)).status).toBe(404);
    expect((await api(`/collections/all/items/${hum.features[0]?.id}`)).status).toBe(200);
    for (const bad of ['x', '1_abc_gw', `99999999999999999_${'a'.repeat(64)}_gw`]) {
      expect((await api(`/collections/temperature/items/${bad}`)).status, bad).toBe(400);
    }
  });

  it('EDR collections list their variables with units', async () => {
    const c = await json<{ parameter_names: Record<string, { unit: { symbol: string } }> }>(
      '/collections/all',
    );
    expect(Object.keys(c.parameter_names)).toEqual(['air_temperature', 'relative_humidity', 'weather']);
    expect(c.parameter_names.air_temperature?.unit.symbol).toBe('degC');
    expect(c.parameter_names.relative_humidity?.unit.symbol).toBe('%');
    const t = await json<{ parameter_names: Record<string, unknown> }>('/collections/temperature');
    expect(Object.keys(t.parameter_names)).toEqual(['air_temperature']);
  });

  it('EDR locations list the stations with their position', async () => {
    const l = await json<Fc>('/collections/all/locations');
    // In code point order, whatever the database's collation.
    expect(l.features.map((f) => f.id)).toEqual([ODD_STATION, 'st-0', 'st-1', 'st-2', 'st-9']);
    for (let s = 0; s < STATIONS; s++) {
      const p = stationPosition(s);
      expect(l.features[s + 1]?.geometry).toEqual({ type: 'Point', coordinates: [p.lon, p.lat] });
    }
    expect(l.features[0]?.geometry).toBeNull();
    expect(l.features[4]?.geometry).toBeNull();
    const csv = await api('/collections/all/locations?f=csv');
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const lines = (await csv.text()).trimEnd().split('\r\n');
    expect(lines[0]).toBe('station,lon,lat,alt,first,last');
    expect(lines).toHaveLength(6);
    expect(lines[1]).toMatch(/^"Zürich ""Nord"", 2",,,,/);
    expect((await api('/collections/all/locations/st-404')).status).toBe(404);
    for (const f of ['covjson', 'geojson', 'csv']) {
      const r = await api(`/collections/all/locations/${encodeURIComponent(ODD_STATION)}?f=${f}`);
      expect(r.status, f).toBe(200);
      expect((await r.text()).includes('Nord'), f).toBe(true);
    }
  });

  it("a location's time series as CoverageJSON and GeoJSON equals SQL's rows", async () => {
    const from = new Date(T0).toISOString();
    const to = new Date(T0 + H - 1).toISOString();
    const cov = await json<{
      type: string;
      domain: {
        domainType: string;
        axes: { x: { values: number[] }; y: { values: number[] }; t: { values: string[] } };
      };
      parameters: Record<string, { unit: { symbol: string } }>;
      ranges: Record<string, { values: (number | null)[]; shape: number[] }>;
    }>(`/collections/all/locations/st-1?datetime=${from}/${to}&limit=${MAX_LIMIT}`);
    expect(cov.type).toBe('Coverage');
    expect(cov.domain.domainType).toBe('PointSeries');
    expect([cov.domain.axes.x.values, cov.domain.axes.y.values]).toEqual([
      [stationPosition(1).lon],
      [stationPosition(1).lat],
    ]);
    const sql = await db.query<{ time: Date; variable: string; value: number }>(
      `SELECT time, variable, value FROM observations WHERE station = 'st-1' AND time >= $1 AND time <= $2
       ORDER BY time, id, edge COLLATE "C" LIMIT ${MAX_LIMIT}`,
      [from, to],
    );
    const times = [...new Set(sql.rows.map((r) => r.time.toISOString()))];
    expect(cov.domain.axes.t.values).toEqual(times);
    expect(cov.parameters.relative_humidity?.unit.symbol).toBe('%');
    for (const v of ['air_temperature', 'relative_humidity']) {
      const expected = times.map(
        (t) => sql.rows.find((r) => r.variable === v && r.time.toISOString() === t)?.value ?? null,
      );
      expect(cov.ranges[v]?.values, v).toEqual(expected);
    }
    const geo = await json<Fc>(
      `/collections/all/locations/st-1?datetime=${from}/${to}&f=geojson&limit=${MAX_LIMIT}`,
    );
    expect(geo.features.map((f) => f.properties.value)).toEqual(sql.rows.map((r) => r.value));
  });

  it('an aggregated collection: features by id, pages, its parameters, CoverageJSON statistics, CSV and GeoParquet', async () => {
    const c = await json<{
      parameter_names: Record<string, { measurementType?: unknown; observedProperty: { id: string } }>;
    }>('/collections/temperature_10min');
    expect(c.parameter_names.air_temperature?.measurementType).toEqual({
      method: 'mean,min,max,count',
      duration: 'PT10M',
    });
    expect(c.parameter_names.air_temperature?.observedProperty.id).toBe(
      'https://vocab.nerc.ac.uk/standard_name/air_temperature/',
    );
    // Paged in pages smaller than the collection, every interval once.
    const seen: string[] = [];
    let url = '/collections/temperature_10min/items?limit=7';
    for (let pages = 0; url && pages < 100; pages++) {
      const page = await json<Fc>(url);
      seen.push(...page.features.map((f) => f.id));
      const next = page.links.find((l) => l.rel === 'next')?.href;
      url = next ? next.slice(next.indexOf('/collections')) : '';
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(await sqlCount('temperature_10min'));
    const first = await json<Fc>('/collections/temperature_10min/items?limit=1');
    const one = await json<Fc['features'][number]>(
      `/collections/temperature_10min/items/${encodeURIComponent(first.features[0]?.id ?? '')}`,
    );
    expect(one.properties).toEqual(first.features[0]?.properties);
    // A raw feature id is not one of an aggregated collection.
    const raw = await json<Fc>('/collections/temperature/items?limit=1');
    expect((await api(`/collections/temperature_10min/items/${raw.features[0]?.id}`)).status).toBe(400);

    const from = new Date(T0).toISOString();
    const to = new Date(T0 + H - 1).toISOString();
    const cov = await json<{
      domain: { axes: { t: { values: string[] } } };
      ranges: Record<string, { values: (number | null)[] }>;
    }>(`/collections/temperature_10min/locations/st-2?datetime=${from}/${to}`);
    const sql = await db.query<{ t: Date; mean: number; n: number }>(
      `SELECT date_bin('10 minutes', time, 'epoch') AS t, avg(value) AS mean, count(*)::int AS n FROM observations
       WHERE variable = 'air_temperature' AND station = 'st-2' AND time >= $1 AND time <= $2 GROUP BY 1 ORDER BY 1`,
      [from, to],
    );
    expect(cov.domain.axes.t.values).toEqual(sql.rows.map((r) => r.t.toISOString()));
    expect(cov.ranges.air_temperature_count?.values).toEqual(sql.rows.map((r) => r.n));
    cov.ranges.air_temperature_mean?.values.forEach((v, i) => {
      expect(v).toBeCloseTo(sql.rows[i]?.mean ?? Number.NaN, 9);
    });

    const csv = await api('/collections/temperature_10min/items?f=csv&limit=2');
    const lines = (await csv.text()).trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'id,time,time_end,station,sensor,variable,unit,lon,lat,alt,mean,min,max,count,flagged,excluded',
    );
    expect(lines).toHaveLength(3);

    const pq = await api(`/collections/temperature_10min/items?f=parquet&datetime=${from}/${to}`);
    expect(pq.status).toBe(200);
    const file = join(dir.path, 'aggregated.parquet');
    writeFileSync(file, Buffer.from(await pq.arrayBuffer()));
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    try {
      const [got] = (
        await duck.runAndReadAll(
          `SELECT count(*)::BIGINT AS n, sum(count)::BIGINT AS readings FROM read_parquet('${file}')`,
        )
      ).getRowObjects();
      const want = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM observations WHERE variable = 'air_temperature' AND time >= $1 AND time <= $2`,
        [from, to],
      );
      expect(Number(got?.readings)).toBe(Number(want.rows[0]?.n));
      // Six intervals per located station; st-9 and the odd station have one reading each.
      expect(Number(got?.n)).toBe(6 * STATIONS + 2);
    } finally {
      duck.closeSync();
    }
  });

  it('f=csv pages like the GeoJSON, with quoting and a Link header', async () => {
    const r = await api('/collections/all/items?f=csv&parameter-name=weather');
    expect(r.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const lines = (await r.text()).trimEnd().split('\r\n');
    expect(lines[0]).toBe('id,time,station,sensor,variable,value,text,unit,lon,lat,alt,quality,source,edge');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(',"rain, ""heavy""",');
    const first = await api('/collections/all/items?f=csv');
    expect(first.headers.get('link')).toMatch(/rel="self".*rel="next"/);
    expect((await first.text()).trimEnd().split('\r\n')).toHaveLength(MAX_LIMIT + 1);
  });

  it('f=parquet gives a closed time range as GeoParquet that DuckDB reads, equal to SQL', async () => {
    const from = new Date(T0 + 10 * 60_000).toISOString();
    const to = new Date(T0 + H + 10 * 60_000).toISOString();
    const r = await api(`/collections/all/items?f=parquet&datetime=${from}/${to}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/vnd.apache.parquet');
    const file = join(dir.path, 'range.parquet');
    writeFileSync(file, Buffer.from(await r.arrayBuffer()));
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    try {
      const [got] = (
        await duck.runAndReadAll(
          `SELECT count(*)::BIGINT AS n, sum(value) AS s, count(geometry)::BIGINT AS g FROM read_parquet('${file}')`,
        )
      ).getRowObjects();
      const want = (
        await db.query<{ n: string; s: number }>(
          'SELECT count(*) AS n, sum(value) AS s FROM observations WHERE time >= $1 AND time <= $2',
          [from, to],
        )
      ).rows[0];
      expect(Number(got?.n)).toBe(Number(want?.n));
      expect(Number(got?.n)).toBeGreaterThan(MAX_LIMIT);
      expect(Number(got?.s)).toBeCloseTo(Number(want?.s), 6);
      // A station's rows over a time range, the odd station id included.
      const all = `${new Date(T0).toISOString()}/${new Date(T0 + 2 * H).toISOString()}`;
      for (const station of ['st-1', ODD_STATION]) {
        const one = await api(
          `/collections/all/locations/${encodeURIComponent(station)}?f=parquet&datetime=${all}`,
        );
        expect(one.status, station).toBe(200);
        writeFileSync(file, Buffer.from(await one.arrayBuffer()));
        const [n] = (
          await duck.runAndReadAll(
            `SELECT count(*)::BIGINT AS n, count(DISTINCT station)::BIGINT AS s FROM read_parquet('${file}')`,
          )
        ).getRowObjects();
        const sql = await db.query<{ n: string }>(
          'SELECT count(*) AS n FROM observations WHERE station = $1',
          [station],
        );
        expect([Number(n?.n), Number(n?.s)], station).toEqual([Number(sql.rows[0]?.n), 1]);
      }
    } finally {
      duck.closeSync();
    }
    for (const bad of [
      'f=parquet',
      `f=parquet&datetime=${from}/..`,
      `f=parquet&datetime=${from}/${to}&bbox=0,0,1,1`,
    ]) {
      const refused = await api(`/collections/temperature/items?${bad}`);
      expect(refused.status, bad).toBe(400);
      expect(((await refused.json()) as { error: string }).error).toMatch(/f=parquet/);
    }
  });
});
