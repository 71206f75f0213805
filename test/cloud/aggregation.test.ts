import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  type Collector,
  createCollector,
  createObjectStore,
  loadCloudConfig,
  loadDatasets,
  type ObjectStore,
} from '@fieldbeam/cloud';
import { type Observation, observationId } from '@fieldbeam/protocol';
import { type Field, type Table, tableFromIPC } from 'apache-arrow';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aggregateFrom, isAggregated } from '../../cloud/src/datasets/aggregate.js';
import {
  cloudCli,
  type NatsServer,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';
import { publishObservations, stationPosition } from './fixtures.js';

/**
 * Aggregated datasets against the real collector: every statistic of every interval equals SQL over
 * the raw rows (in the Arrow file, and in the GeoParquet file as DuckDB reads it), late data rebuilds
 * the window, the files carry CF metadata, and `max_delay` builds a window that keeps receiving data.
 */

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const H = 3_600_000;
const EVERY = 600_000;
const T0 = Date.parse('2026-01-10T10:00:00.000Z');
const VARIABLES = ['air_temperature', 'relative_humidity', 'iss:STATE'];

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let db: pg.Pool;
let collector: Collector;
let store: ObjectStore;
let env: Record<string, string>;
let duck: Awaited<ReturnType<DuckDBInstance['connect']>>;

function obs(o: {
  edge: string;
  station: number;
  time: number;
  variable: string;
  unit: string;
  value: number | null;
  text?: string;
  sensor?: string;
  quality?: string[];
}): Observation {
  const station = `st-${o.station}`;
  const time = new Date(o.time).toISOString();
  return {
    id: observationId({
      source: 'mqtt',
      station,
      ...(o.sensor ? { sensor: o.sensor } : {}),
      variable: o.variable,
      time,
      value: o.value,
      ...(o.text ? { text: o.text } : {}),
    }),
    source: 'mqtt',
    edge: o.edge,
    station,
    ...(o.sensor ? { sensor: o.sensor } : {}),
    variable: o.variable,
    value: o.value,
    ...(o.text ? { text: o.text } : {}),
    unit: o.unit,
    time,
    received: time,
    ...stationPosition(o.station),
    ...(o.quality ? { quality: o.quality } : {}),
  };
}

/**
 * An hour of readings: temperature at three stations (one with a sensor), humidity at one, a text
 * state at one; some flagged `edge_time` (used, counted in `flagged`), some `time_invalid` (left out,
 * counted in `excluded`).
 */
function hourOf(edge: string, start: number, offsetMs = 0): Observation[] {
  const out: Observation[] = [];
  for (let i = 0; i < 500; i++) {
    const t = start + offsetMs + i * 7_000;
    if (t >= start + H) break;
    const quality = i % 17 === 0 ? ['time_invalid'] : i % 13 === 0 ? ['edge_time'] : undefined;
    for (let s = 0; s < 3; s++) {
      out.push(
        obs({
          edge,
          station: s,
          time: t,
          variable: 'air_temperature',
          unit: 'degC',
          value: s * 10 + (((i + offsetMs) * 37) % 101) / 4 - 5,
          ...(s === 2 ? { sensor: 'probe-1' } : {}),
          ...(quality ? { quality } : {}),
        }),
      );
    }
    out.push(
      obs({ edge, station: 0, time: t + 1, variable: 'relative_humidity', unit: '%', value: 40 + (i % 23) }),
    );
    if (i % 9 === 0) {
      out.push(
        obs({
          edge,
          station: 0,
          time: t + 2,
          variable: 'iss:STATE',
          unit: '1',
          value: null,
          text: i % 2 ? 'OPEN' : 'CLOSED',
        }),
      );
    }
  }
  return out;
}

interface Stats {
  mean: number | null;
  min: number | null;
  max: number | null;
  sum: number | null;
  count: number;
  first: number | null;
  last: number | null;
  first_text: string | null;
  last_text: string | null;
  flagged: number;
  excluded: number;
}

const key = (t: number, station: string, sensor: string | null, variable: string, unit: string) =>
  `${new Date(t).toISOString()}|${station}|${sensor ?? ''}|${variable}|${unit}`;

/**
 * The statistics of each interval of [start, end), written independently of the collector's SQL:
 * plain GROUP BY for the sums and counts, DISTINCT ON per series for first and last.
 */
async function expected(start: number, end: number): Promise<Map<string, Stats>> {
  const base = `WITH d AS (
      SELECT DISTINCT time, id, station, sensor, variable, unit, value, text, quality FROM observations
      WHERE variable = ANY($1) AND time >= $2 AND time < $3),
    b AS (
      SELECT *, to_timestamp(floor(extract(epoch FROM time) / 600) * 600) AS t,
             'time_invalid' = ANY(coalesce(quality, '{}')) AS bad FROM d)`;
  const args = [VARIABLES, new Date(start), new Date(end)];
  const groups = await db.query(
    `${base} SELECT t, station, sensor, variable, unit,
       avg(value) FILTER (WHERE NOT bad) AS mean, min(value) FILTER (WHERE NOT bad) AS min,
       max(value) FILTER (WHERE NOT bad) AS max, sum(value) FILTER (WHERE NOT bad) AS sum,
       count(*) FILTER (WHERE NOT bad)::int AS count,
       count(*) FILTER (WHERE NOT bad AND quality IS NOT NULL)::int AS flagged,
       count(*) FILTER (WHERE bad)::int AS excluded
     FROM b GROUP BY 1, 2, 3, 4, 5`,
    args,
  );
  const out = new Map<string, Stats>();
  for (const r of groups.rows) {
    out.set(key(r.t.getTime(), r.station, r.sensor, r.variable, r.unit), {
      ...r,
      first: null,
      last: null,
      first_text: null,
      last_text: null,
    });
  }
  const ends = async (col: 'value' | 'text', order: string) =>
    (
      await db.query(
        `${base} SELECT DISTINCT ON (t, station, sensor, variable, unit) t, station, sensor, variable, unit, ${col} AS v
         FROM b WHERE NOT bad AND value IS ${col === 'value' ? 'NOT NULL' : 'NULL AND text IS NOT NULL'}
         ORDER BY t, station, sensor, variable, unit, ${order}`,
        args,
      )
    ).rows;
  const put = (rows: Awaited<ReturnType<typeof ends>>, field: keyof Stats) => {
    for (const r of rows) {
      const s = out.get(key(r.t.getTime(), r.station, r.sensor, r.variable, r.unit)) as Stats;
      (s as unknown as Record<string, unknown>)[field] = r.v;
    }
  };
  put(await ends('value', 'time, id'), 'first');
  put(await ends('value', 'time DESC, id DESC'), 'last');
  put(await ends('text', 'time, id'), 'first_text');
  put(await ends('text', 'time DESC, id DESC'), 'last_text');
  return out;
}

function checkStats(actual: Map<string, Stats>, want: Map<string, Stats>) {
  expect([...actual.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [k, w] of want) {
    const a = actual.get(k) as Stats;
    for (const f of ['count', 'flagged', 'excluded', 'first_text', 'last_text'] as const) {
      expect(a[f], `${k} ${f}`).toBe(w[f]);
    }
    for (const f of ['mean', 'min', 'max', 'sum', 'first', 'last'] as const) {
      if (w[f] === null) expect(a[f], `${k} ${f}`).toBeNull();
      else expect(a[f], `${k} ${f}`).toBeCloseTo(w[f] as number, 9);
    }
  }
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
const str = (v: unknown) => (v === null || v === undefined ? null : String(v));

/** Statistics keyed by interval and series, from rows as a reader returns them (`t`: interval start, ms). */
function statsOf(rows: Iterable<Record<string, unknown>>): Map<string, Stats> {
  const out = new Map<string, Stats>();
  for (const r of rows) {
    out.set(key(Number(r.t), String(r.station), str(r.sensor), String(r.variable), String(r.unit)), {
      mean: num(r.mean),
      min: num(r.min),
      max: num(r.max),
      sum: num(r.sum),
      count: Number(r.count),
      first: num(r.first),
      last: num(r.last),
      first_text: str(r.first_text),
      last_text: str(r.last_text),
      flagged: Number(r.flagged),
      excluded: Number(r.excluded),
    });
  }
  return out;
}

const statsOfArrow = (table: Table) =>
  statsOf(
    [...table].map((row) => {
      const r = row.toJSON() as Record<string, unknown>;
      return { ...r, t: r.time };
    }),
  );

const statsOfParquet = async (file: string) =>
  statsOf(
    (
      await duck.runAndReadAll(
        `SELECT epoch_ms(time)::DOUBLE AS t, * EXCLUDE (time, geometry) FROM read_parquet('${file}')`,
      )
    ).getRowObjects(),
  );

/** The Arrow schema a Parquet writer embedded (`ARROW:schema`), as DuckDB lists the file's metadata. */
async function parquetArrowFields(file: string): Promise<Field[]> {
  const [row] = (
    await duck.runAndReadAll(
      `SELECT decode(value) AS v FROM parquet_kv_metadata('${file}') WHERE decode(key) = 'ARROW:schema'`,
    )
  ).getRowObjects();
  const message = Buffer.from(String(row?.v), 'base64');
  // The value is one encapsulated IPC schema message; an end-of-stream marker makes it a stream.
  const eos = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
  return tableFromIPC(Buffer.concat([message, eos])).schema.fields;
}

const latestExport = async (dataset: string, exporter: string, windowStart: number) =>
  (
    await db.query<{ version: number; key: string }>(
      `SELECT version, key FROM dataset_exports WHERE dataset = $1 AND exporter = $2 AND window_start = $3
       ORDER BY version DESC LIMIT 1`,
      [dataset, exporter, new Date(windowStart)],
    )
  ).rows[0];

async function saved(keyName: string): Promise<string> {
  const bytes = await store.get(keyName);
  expect(bytes, keyName).toBeDefined();
  const file = join(dir.path, keyName.replace(/[/:]/g, '_'));
  writeFileSync(file, bytes ?? new Uint8Array());
  return file;
}

beforeAll(async () => {
  dir = tempDir();
  duck = await (await DuckDBInstance.create(':memory:')).connect();
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  db = new pg.Pool({ connectionString: postgres.url });
  db.on('error', () => {});
  writeFileSync(
    join(dir.path, 'datasets.yaml'),
    `datasets:
  - name: agg
    filter: { variables: [air_temperature, relative_humidity, 'iss:STATE'] }
    window: PT1H
    grace: PT1S
    debounce: PT0.3S
    aggregate: { every: PT10M, stats: [mean, min, max, count, sum, first, last], exclude_flags: [time_invalid] }
  - name: raw
    filter: { variables: [air_temperature] }
    window: PT1H
    grace: PT1S
    debounce: PT0.3S
  # A window that stays open (grace of ten years) with a debounce longer than the test: only
  # max_delay can get it built while readings keep arriving.
  - name: live
    filter: { variables: [air_pressure] }
    window: PT1H
    grace: P3650D
    debounce: PT60S
    max_delay: PT3S
    provisional: true
    aggregate: { every: PT1M, stats: [mean, count] }
`,
  );
  env = {
    NATS_URL: nats.url,
    DATABASE_URL: postgres.url,
    FB_DATA_DIR: join(dir.path, 'data'),
    FB_HTTP_HOST: '127.0.0.1',
    FB_HTTP_PORT: '0',
    FB_DATASETS_FILE: join(dir.path, 'datasets.yaml'),
    FB_BUILD_POLL_MS: '200',
    FB_BUILD_LEASE_MS: '5000',
    FB_INGEST_MAX_AGE: 'P36500D',
    LOG_LEVEL: 'silent',
  };
  const config = loadCloudConfig(env);
  store = createObjectStore(config);
  collector = await createCollector(config, log);
});

afterAll(async () => {
  await collector?.close();
  await store?.close();
  await db?.end();
  duck?.closeSync();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

describe('aggregated datasets', () => {
  it('writes per-interval statistics equal to SQL over the raw rows, and rebuilds on late data', async () => {
    const first = hourOf('gw-a', T0);
    // The same temperature readings of station 1 through a second edge: stored twice, counted once.
    const twice = first.filter((o) => o.station === 'st-1').map((o) => ({ ...o, edge: 'gw-b' }));
    await publishObservations(nats.url, 'gw-a', first);
    await publishObservations(nats.url, 'gw-b', twice);
    const e1 = await waitFor('the aggregated window exported as GeoParquet', () =>
      latestExport('agg', 'geoparquet', T0),
    );
    const stored = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM observations WHERE station = 'st-1' AND edge = 'gw-b'`,
    );
    expect(Number(stored.rows[0]?.n)).toBe(twice.length);

    let want = await expected(T0, T0 + H);
    // Six intervals x (3 temperature series + humidity + text state).
    expect(want.size).toBe(6 * 5);
    expect([...want.values()].some((s) => s.flagged > 0)).toBe(true);
    expect([...want.values()].some((s) => s.excluded > 0)).toBe(true);
    expect([...want.values()].some((s) => s.first_text !== null)).toBe(true);

    const v1 = await db.query<{ key: string; rows: string }>(
      `SELECT key, rows FROM dataset_versions WHERE dataset = 'agg' AND window_start = $1 AND version = $2`,
      [new Date(T0), e1.version],
    );
    const arrow = tableFromIPC((await store.get(v1.rows[0]?.key ?? '')) ?? new Uint8Array());
    expect(arrow.numRows).toBe(want.size);
    expect(arrow.schema.fields.map((f) => f.name)).toEqual([
      'time',
      'time_end',
      'station',
      'sensor',
      'variable',
      'unit',
      'lat',
      'lon',
      'alt',
      'mean',
      'min',
      'max',
      'count',
      'sum',
      'first',
      'last',
      'first_text',
      'last_text',
      'flagged',
      'excluded',
    ]);
    checkStats(statsOfArrow(arrow), want);
    expect(Object.fromEntries(arrow.schema.metadata)).toMatchObject({
      'fieldbeam:dataset': 'agg',
      'fieldbeam:aggregate_every_ms': '600000',
      'fieldbeam:aggregate_stats': 'mean,min,max,count,sum,first,last',
      'fieldbeam:aggregate_exclude_flags': 'time_invalid',
    });
    const parquet = await saved(e1.key);
    checkStats(await statsOfParquet(parquet), want);
    // Interval bounds and positions as DuckDB sees them (GEOMETRY from the `geo` metadata).
    const points = (
      await duck.runAndReadAll(
        `SELECT epoch_ms(time_end) - epoch_ms(time) AS span, ST_AsText(geometry) AS wkt, lon, lat
         FROM read_parquet('${parquet}')`,
      )
    ).getRowObjects();
    for (const p of points) {
      expect(Number(p.span)).toBe(EVERY);
      expect(String(p.wkt)).toBe(`POINT (${p.lon} ${p.lat})`);
    }
    // CF metadata in both files: standard names and units by variable, cell methods, coordinates.
    const cfOf = (fields: Field[]) => {
      const f = (n: string) => fields.find((x) => x.name === n)?.metadata ?? new Map<string, string>();
      return {
        names: JSON.parse(f('mean').get('standard_name_by_variable') ?? '{}'),
        units: JSON.parse(f('max').get('units_by_variable') ?? '{}'),
        method: f('mean').get('cell_methods'),
        lat: f('lat').get('standard_name'),
        lonUnits: f('lon').get('units'),
        count: f('count').get('units'),
      };
    };
    const cf = {
      names: { air_temperature: 'air_temperature', relative_humidity: 'relative_humidity' },
      units: { air_temperature: 'degC', 'iss:STATE': '1', relative_humidity: '%' },
      method: 'time: mean (interval: 600 s)',
      lat: 'latitude',
      lonUnits: 'degrees_east',
      count: '1',
    };
    expect(cfOf(arrow.schema.fields)).toEqual(cf);
    expect(cfOf(await parquetArrowFields(parquet))).toEqual(cf);
    // What the read API queries: the same rows, for the intervals a time range touches.
    const [aggDef, rawDef] = loadDatasets(join(dir.path, 'datasets.yaml'));
    expect(aggDef && isAggregated(aggDef)).toBe(true);
    expect(rawDef && isAggregated(rawDef)).toBe(false);
    if (aggDef && isAggregated(aggDef)) {
      const values: unknown[] = [];
      const bind = (v: unknown) => {
        values.push(v);
        return `$${values.length}`;
      };
      const from = aggregateFrom(
        aggDef,
        { from: new Date(T0 + 5 * 60_000), to: new Date(T0 + 25 * 60_000) },
        bind,
      );
      const api = await db.query(
        `SELECT time, station, sensor, variable, unit, mean, count FROM ${from}
         WHERE variable = ${bind('air_temperature')} ORDER BY time, id`,
        values,
      );
      // 10:00, 10:10 and 10:20 (each interval whole), three stations each.
      expect(api.rows).toHaveLength(9);
      for (const r of api.rows) {
        const w = want.get(key(r.time.getTime(), r.station, r.sensor, r.variable, r.unit));
        expect(r.count).toBe(w?.count);
        expect(r.mean).toBeCloseTo(w?.mean ?? Number.NaN, 9);
      }
    }
    // The raw dataset's value column carries them too.
    const raw = await waitFor('the raw window exported', () => latestExport('raw', 'geoparquet', T0));
    const rawFields = await parquetArrowFields(await saved(raw.key));
    const value = rawFields.find((f) => f.name === 'value')?.metadata;
    expect(JSON.parse(value?.get('standard_name_by_variable') ?? '{}')).toEqual({
      air_temperature: 'air_temperature',
    });
    expect(JSON.parse(value?.get('units_by_variable') ?? '{}')).toEqual({ air_temperature: 'degC' });

    // Late readings in the third interval: the window is built again and every statistic follows.
    const late = hourOf('gw-a', T0 + 2 * EVERY, 3_000).filter((o) => Date.parse(o.time) < T0 + 3 * EVERY);
    await publishObservations(nats.url, 'gw-a', late);
    const e2 = await waitFor('the aggregated window rebuilt after late data', async () => {
      const e = await latestExport('agg', 'geoparquet', T0);
      return e && e.version > e1.version ? e : undefined;
    });
    const before = want;
    want = await expected(T0, T0 + H);
    const third = key(T0 + 2 * EVERY, 'st-0', null, 'air_temperature', 'degC');
    expect(want.get(third)?.count).toBeGreaterThan(before.get(third)?.count ?? Infinity);
    checkStats(await statsOfParquet(await saved(e2.key)), want);

    // The command line shows how each dataset is built.
    const listed = await promisify(execFile)(process.execPath, [cloudCli, 'datasets'], {
      env: { ...process.env, ...env },
    });
    expect(listed.stdout).toContain(
      'agg: window 3600s, grace 1s, debounce 0.3s, mean/min/max/count/sum/first/last every 600s;',
    );
    expect(listed.stdout).toContain(
      'live: window 3600s, grace 315360000s, debounce 60s, max_delay 3s, provisional builds, mean/count every 60s;',
    );
  });

  it('builds a window that keeps receiving data within max_delay, while the debounce keeps moving', async () => {
    // Readings every 250 ms: the 60 s debounce never runs out during the test. Generous bound: the
    // promise is 3 s after the first reading (plus a builder poll); 40 s allows for a loaded machine.
    const started = Date.now();
    let i = 0;
    let version: { version: number; provisional: boolean; built_at: Date } | undefined;
    while (!version && Date.now() - started < 40_000) {
      await publishObservations(nats.url, 'gw-live', [
        obs({
          edge: 'gw-live',
          station: 0,
          time: T0 + i * 1000,
          variable: 'air_pressure',
          unit: 'hPa',
          value: 1000 + i,
        }),
      ]);
      i++;
      await new Promise((r) => setTimeout(r, 250));
      version = (
        await db.query(
          `SELECT version, provisional, built_at FROM dataset_versions WHERE dataset = 'live' ORDER BY version LIMIT 1`,
        )
      ).rows[0];
    }
    expect(version, 'a build of the live window while readings kept arriving').toBeDefined();
    expect(version?.provisional).toBe(true);
    // More data after that build: dirty again, and built again within max_delay of it, though the
    // debounce alone would wait a minute.
    await publishObservations(nats.url, 'gw-live', [
      obs({
        edge: 'gw-live',
        station: 0,
        time: T0 + i * 1000,
        variable: 'air_pressure',
        unit: 'hPa',
        value: 1,
      }),
    ]);
    const again = await waitFor(
      'a second build of the live window',
      async () =>
        (
          await db.query<{ version: number; provisional: boolean; rows: string }>(
            `SELECT version, provisional, rows FROM dataset_versions WHERE dataset = 'live' AND version > $1
             ORDER BY version DESC LIMIT 1`,
            [version?.version],
          )
        ).rows[0],
      40_000,
    );
    expect(again.provisional).toBe(true);
    // One row per minute with readings; each counts what was stored by then.
    const minutes = await db.query<{ n: string }>(
      `SELECT count(DISTINCT date_trunc('minute', time)) AS n FROM observations WHERE variable = 'air_pressure'`,
    );
    expect(Number(again.rows)).toBeLessThanOrEqual(Number(minutes.rows[0]?.n));
  });
});
