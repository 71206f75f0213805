import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  type Collector,
  createCollector,
  createObjectStore,
  loadCloudConfig,
  type ObjectStore,
} from '@fieldbeam/cloud';
import { tableFromIPC } from 'apache-arrow';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cloudCli,
  type NatsServer,
  readMetric,
  type S3Server,
  startNatsServer,
  startPostgres,
  startS3rver,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';
import { publishObservations, reading, stationPosition } from './fixtures.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const run = promisify(execFile);
const H = 3_600_000;
const T0 = Date.parse('2026-01-10T10:00:00.000Z');
const STATIONS = 6;

let nats: NatsServer;
let postgres: TestPostgres;
let s3: S3Server;
let dir: TempDir;
let db: pg.Pool;
let duck: Awaited<ReturnType<DuckDBInstance['connect']>>;

beforeAll(async () => {
  s3 = await startS3rver();
  dir = tempDir();
  duck = await (await DuckDBInstance.create(':memory:')).connect();
  writeFileSync(
    join(dir.path, 'datasets.yaml'),
    `datasets:
  - name: temperature
    title: Air temperature
    filter: { variables: [air_temperature] }
    window: PT1H
    grace: PT1S
    debounce: PT0.3S
  - name: live
    filter: { variables: [air_pressure] }
    window: PT6S
    grace: PT1S
    debounce: PT0.2S
    provisional: true
`,
  );
});

afterAll(async () => {
  duck?.closeSync();
  await s3?.close();
  dir?.remove();
});

const env = (name: string, extra: Record<string, string> = {}) => ({
  NATS_URL: nats.url,
  DATABASE_URL: postgres.url,
  FB_DATA_DIR: join(dir.path, name),
  FB_HTTP_HOST: '127.0.0.1',
  FB_HTTP_PORT: '0',
  FB_INGEST_CONSUMER: `ingest-${name}`,
  FB_COORDINATOR_CONSUMER: `datasets-${name}`,
  FB_DATASETS_FILE: join(dir.path, 'datasets.yaml'),
  FB_BUILD_POLL_MS: '200',
  FB_BUILD_LEASE_MS: '5000',
  // The readings here carry fixed dates, one of them years back: accept them all.
  FB_INGEST_MAX_AGE: 'P36500D',
  LOG_LEVEL: 'silent',
  ...extra,
});

interface VersionRow {
  window_start: Date;
  version: number;
  rows: string;
  key: string;
  sha256: string;
}
const versions = async (dataset: string) =>
  (
    await db.query<VersionRow>(
      'SELECT window_start, version, rows, key, sha256 FROM dataset_versions WHERE dataset = $1 ORDER BY window_start, version',
      [dataset],
    )
  ).rows;
const exportsOf = async (exporter: string, dataset = 'temperature') =>
  (
    await db.query<{ window_start: Date; version: number; key: string; rows: string }>(
      `SELECT window_start, version, key, rows FROM dataset_exports WHERE exporter = $1 AND dataset = $2
       ORDER BY window_start, version`,
      [exporter, dataset],
    )
  ).rows;
const sqlRows = async (start: number, end: number) =>
  (
    await db.query<{ n: string; s: number; lo: Date; hi: Date }>(
      `SELECT count(*) AS n, sum(value) AS s, min(time) AS lo, max(time) AS hi FROM observations
       WHERE variable = 'air_temperature' AND time >= $1 AND time < $2`,
      [new Date(start), new Date(end)],
    )
  ).rows[0];

/** Reads a GeoParquet object with DuckDB (an independent reader) and checks it against SQL. */
async function checkGeoParquet(store: ObjectStore, key: string, windowStart: number) {
  const bytes = await store.get(key);
  expect(bytes, key).toBeDefined();
  const file = join(dir.path, `check-${createHash('md5').update(key).digest('hex')}.parquet`);
  writeFileSync(file, bytes ?? new Uint8Array());
  const q = async (sql: string) => (await duck.runAndReadAll(sql)).getRowObjects();
  const [stats] = await q(
    `SELECT count(*)::BIGINT AS n, sum(value) AS s, min(epoch_ms(time))::BIGINT AS lo, max(epoch_ms(time))::BIGINT AS hi,
            count(geometry)::BIGINT AS g,  count(DISTINCT station)::BIGINT AS stations
     FROM read_parquet('${file}')`,
  );
  const expected = await sqlRows(windowStart, windowStart + H);
  expect(Number(stats?.n)).toBe(Number(expected?.n));
  expect(Number(stats?.s)).toBeCloseTo(Number(expected?.s), 6);
  expect(Number(stats?.lo)).toBe(expected?.lo.getTime());
  expect(Number(stats?.hi)).toBe(expected?.hi.getTime());
  expect(Number(stats?.stations)).toBe(STATIONS);
  // DuckDB recognises the `geo` metadata and reads the column as GEOMETRY; every point must be the
  // row's own lon/lat.
  const [types] = await q(`SELECT typeof(geometry) AS t FROM read_parquet('${file}') LIMIT 1`);
  expect(String(types?.t)).toMatch(/^GEOMETRY/);
  const points = await q(`SELECT ST_AsText(geometry) AS wkt, lon, lat FROM read_parquet('${file}')`);
  for (const p of points) {
    const [x, y] = /^POINT \((\S+) (\S+)\)$/.exec(String(p.wkt))?.slice(1).map(Number) ?? [];
    expect([x, y]).toEqual([p.lon, p.lat]);
  }
  const [meta] = await q(
    `SELECT decode(value) AS geo FROM parquet_kv_metadata('${file}') WHERE decode(key) = 'geo'`,
  );
  const geo = JSON.parse(String(meta?.geo));
  expect(geo).toMatchObject({
    version: '1.1.0',
    primary_column: 'geometry',
    columns: { geometry: { encoding: 'WKB', geometry_types: ['Point'] } },
  });
  const [[minX, minY, maxX, maxY]] = [geo.columns.geometry.bbox as number[]];
  expect([minX, minY]).toEqual([stationPosition(0).lon, stationPosition(0).lat]);
  expect([maxX, maxY]).toEqual([stationPosition(STATIONS - 1).lon, stationPosition(STATIONS - 1).lat]);
  const [codec] = await q(
    `SELECT DISTINCT compression::VARCHAR AS c FROM parquet_metadata('${file}') WHERE path_in_schema = 'value'`,
  );
  expect(codec?.c).toBe('ZSTD');
  return Number(stats?.n);
}

/** Readings of `n` per station, spread over the hour starting at `start`. */
function hour(edge: string, start: number, n: number, offset = 0) {
  const out = [];
  for (let s = 0; s < STATIONS; s++) {
    for (let i = 0; i < n; i++) {
      out.push(reading({ edge, station: s, time: start + offset + i * 10_000, value: s * 100 + i / 4 }));
    }
  }
  return out;
}

describe.each([
  ['folder', () => ({})],
  ['s3', () => s3.collectorEnv],
])('datasets on the %s object store', (name, storeEnv) => {
  // Window arithmetic does not depend on the object store: those cases are registered once only.
  const itOnce: typeof it = name === 'folder' ? it : ((() => {}) as unknown as typeof it);
  let collector: Collector;
  let store: ObjectStore;
  const api = (path: string) => fetch(`http://127.0.0.1:${collector.httpPort}${path}`);

  beforeAll(async () => {
    // Each object store gets a NATS server and a database of its own.
    [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
    db = new pg.Pool({ connectionString: postgres.url });
    db.on('error', () => {}); // idle connections dropped at shutdown
    const config = loadCloudConfig(env(name, storeEnv()));
    store = createObjectStore(config);
    collector = await createCollector(config, log);
  });
  afterAll(async () => {
    await collector?.close();
    await store?.close();
    await db?.end();
    await Promise.all([nats?.close(), postgres?.close()]);
  });

  it('builds each window once it is due, with exporters, and again when late data arrives', async () => {
    const edge = `gw-${name}`;
    // Two past windows of temperature, plus humidity that the dataset's filter leaves out.
    // One batch per window (each fits in 500), so each window is marked once and built once.
    const humidity = Array.from({ length: 30 }, (_, i) =>
      reading({ edge, station: 1, time: T0 + i * 1000, value: i, variable: 'relative_humidity', unit: '%' }),
    );
    await publishObservations(nats.url, edge, hour(edge, T0, 50));
    await publishObservations(nats.url, edge, hour(edge, T0 + H, 40));
    await publishObservations(nats.url, edge, humidity);

    await waitFor('both windows built and exported', async () => {
      const e = await exportsOf('geoparquet');
      return e.length === 2 ? e : undefined;
    });
    let v = await versions('temperature');
    expect(v.map((r) => [r.window_start.getTime(), r.version, Number(r.rows)])).toEqual([
      [T0, 1, STATIONS * 50],
      [T0 + H, 1, STATIONS * 40],
    ]);
    // The Arrow object is the one recorded: its sha256, its rows, its columns.
    for (const r of v) {
      expect(r.key).toBe(
        `datasets/temperature/${r.window_start.toISOString().replace('.000Z', 'Z')}/1.arrow`,
      );
      const bytes = await store.get(r.key);
      expect(
        createHash('sha256')
          .update(bytes ?? new Uint8Array())
          .digest('hex'),
      ).toBe(r.sha256);
      const table = tableFromIPC(bytes ?? new Uint8Array());
      expect(table.numRows).toBe(Number(r.rows));
      expect(table.schema.fields.map((f) => f.name)).toEqual([
        'time',
        'station',
        'sensor',
        'variable',
        'value',
        'text',
        'unit',
        'lat',
        'lon',
        'alt',
        'quality',
        'source',
        'edge',
      ]);
      expect(table.schema.metadata.get('fieldbeam:dataset')).toBe('temperature');
      // The box of its points, in the footer: what the GeoParquet export takes instead of a pass.
      const first = stationPosition(0);
      const last = stationPosition(STATIONS - 1);
      expect(JSON.parse(String(table.schema.metadata.get('fieldbeam:bbox')))).toEqual([
        first.lon,
        first.lat,
        last.lon,
        last.lat,
      ]);
      const times = table.getChild('time')?.toArray() as BigInt64Array;
      for (let i = 1; i < times.length; i++)
        expect((times[i] as bigint) >= (times[i - 1] as bigint)).toBe(true);
    }
    for (const e of await exportsOf('geoparquet'))
      await checkGeoParquet(store, e.key, e.window_start.getTime());

    // Late data for the first window only: it is re-opened and built again; the second is left alone.
    await publishObservations(nats.url, edge, hour(edge, T0, 5, 3_000));
    await waitFor('the late window rebuilt and re-exported', async () => {
      const e = await exportsOf('geoparquet');
      return e.some((x) => x.window_start.getTime() === T0 && x.version > 1) ? e : undefined;
    });
    v = await versions('temperature');
    const latest = (w: number) => v.filter((r) => r.window_start.getTime() === w).at(-1);
    expect(Number(latest(T0)?.rows)).toBe(STATIONS * 55);
    expect(latest(T0)?.version).toBeGreaterThan(1);
    expect(latest(T0 + H)?.version).toBe(1);
    const e2 = (await exportsOf('geoparquet')).find((x) => x.version === latest(T0)?.version);
    expect(await checkGeoParquet(store, e2?.key ?? '', T0)).toBe(STATIONS * 55);

    // The audit trail says which ingest batches touched which window.
    const audit = await db.query<{ n: string }>(
      `SELECT count(DISTINCT batch) AS n FROM window_marks WHERE dataset = 'temperature' AND window_start = $1`,
      [new Date(T0)],
    );
    expect(Number(audit.rows[0]?.n)).toBeGreaterThanOrEqual(2);

    // Metrics: window states, build durations, exporter lag.
    expect(
      await readMetric(collector.httpPort, 'fb_cloud_dataset_windows', 'dataset="temperature",state="built"'),
    ).toBe(2);
    expect(
      await readMetric(collector.httpPort, 'fb_cloud_build_duration_seconds_count'),
    ).toBeGreaterThanOrEqual(3);
    expect(
      await readMetric(
        collector.httpPort,
        'fb_cloud_consumer_pending_messages',
        `consumer="datasets-${name}-export-geoparquet"`,
      ),
    ).toBe(0);
  });

  itOnce('builds an open window provisionally, then once more when it closes', async () => {
    const edge = `gw-live-${name}`;
    // Readings at the start of the next 6 s window, so it is surely still open when they arrive.
    const start = Math.floor(Date.now() / 6000) * 6000 + 6000;
    await publishObservations(
      nats.url,
      edge,
      Array.from({ length: 20 }, (_, i) =>
        reading({
          edge,
          station: i % 2,
          time: start + i,
          value: 1000 + i,
          variable: 'air_pressure',
          unit: 'hPa',
        }),
      ),
    );
    const rows = await waitFor(
      'a provisional build and then the final one',
      async () => {
        const r = await db.query<{ version: number; provisional: boolean; rows: string }>(
          `SELECT version, provisional, rows FROM dataset_versions WHERE dataset = 'live' AND window_start = $1
           ORDER BY version`,
          [new Date(start)],
        );
        return r.rows.some((v) => !v.provisional) ? r.rows : undefined;
      },
      20_000,
    );
    expect(rows[0]?.provisional).toBe(true);
    expect(rows.at(-1)).toMatchObject({ provisional: false, rows: '20' });
    const w = await db.query<{ final: boolean; due_at: Date | null }>(
      `SELECT final, due_at FROM dataset_windows WHERE dataset = 'live'`,
    );
    expect(w.rows).toEqual([{ final: true, due_at: null }]);
  });

  itOnce('marks only the windows with data when one batch spans years', async () => {
    // An edge whose clock jumped: one batch with readings two years apart (17,000+ hourly windows).
    const edge = 'gw-clock';
    const far = Date.parse('2024-01-10T10:30:00.000Z');
    await publishObservations(nats.url, edge, [
      reading({ edge, station: 0, time: far, value: 1 }),
      reading({ edge, station: 0, time: T0 + 30 * 60_000 + 1, value: 2 }),
    ]);
    const marked = await waitFor('the batch to be marked', async () => {
      const r = await db.query<{ window_start: Date }>(
        `SELECT window_start FROM window_marks WHERE dataset = 'temperature' AND edge = $1 ORDER BY window_start`,
        [edge],
      );
      return r.rows.length > 0 ? r.rows : undefined;
    });
    expect(marked.map((m) => m.window_start.getTime())).toEqual([Date.parse('2024-01-10T10:00:00.000Z'), T0]);
  });

  it('answers bbox and time queries with the same rows as SQL, page by page', async () => {
    const bbox = [
      stationPosition(1).lon,
      stationPosition(1).lat,
      stationPosition(3).lon,
      stationPosition(3).lat,
    ];
    const from = new Date(T0 + 20 * 60_000).toISOString();
    const to = new Date(T0 + H + 5 * 60_000).toISOString();
    const ids: string[] = [];
    let url = `/collections/temperature/items?bbox=${bbox.join(',')}&datetime=${from}/${to}&limit=37`;
    for (let pages = 0; url && pages < 100; pages++) {
      const r = await api(url);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/geo+json');
      const body = (await r.json()) as {
        features: {
          id: string;
          geometry: { coordinates: number[] };
          properties: { variable: string; observation: string };
        }[];
        links: { rel: string; href: string }[];
      };
      expect(body.features.length).toBeLessThanOrEqual(37);
      for (const f of body.features) {
        expect(f.properties.variable).toBe('air_temperature');
        ids.push(f.properties.observation);
      }
      const next = body.links.find((l) => l.rel === 'next')?.href;
      url = next ? next.slice(next.indexOf('/collections')) : '';
    }
    const sql = await db.query<{ id: string }>(
      `SELECT id FROM observations WHERE variable = 'air_temperature' AND lon BETWEEN $1 AND $3 AND lat BETWEEN $2 AND $4
       AND time >= $5 AND time <= $6 ORDER BY time, id`,
      [...bbox, from, to],
    );
    expect(sql.rows.length).toBeGreaterThan(74); // more than two pages
    expect(ids).toEqual(sql.rows.map((r) => r.id));

    // EDR position: a station's point, within 100 m, one variable.
    const p = stationPosition(2);
    const pos = (await (
      await api(
        `/collections/temperature/position?coords=POINT(${p.lon} ${p.lat})&within=100&within-units=m&limit=1000`,
      )
    ).json()) as { features: { properties: { station: string } }[] };
    const atStation = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM observations WHERE station = 'st-2' AND variable = 'air_temperature'`,
    );
    expect(pos.features.length).toBe(Number(atStation.rows[0]?.n));
    expect(new Set(pos.features.map((f) => f.properties.station))).toEqual(new Set(['st-2']));

    // Landing page, collections, windows and a download of the built file.
    expect((await api('/')).status).toBe(200);
    const cols = (await (await api('/collections')).json()) as { collections: { id: string }[] };
    expect(cols.collections.map((c) => c.id)).toEqual(['temperature', 'live']);
    const win = (await (await api(`/collections/temperature/windows/2026-01-10T11:00:00Z`)).json()) as {
      versions: { version: number; sha256: string; links: { href: string; type: string }[] }[];
    };
    const arrowLink = win.versions[0]?.links.find((l) => l.href.endsWith('.arrow'))?.href ?? '';
    const download = await fetch(arrowLink);
    expect(download.status).toBe(200);
    expect(
      createHash('sha256')
        .update(Buffer.from(await download.arrayBuffer()))
        .digest('hex'),
    ).toBe(win.versions[0]?.sha256);

    // Bad input is refused with a reason; nothing reaches SQL unparameterised.
    for (const bad of [
      '/collections/temperature/items?bbox=1,2,3',
      '/collections/temperature/items?datetime=yesterday',
      '/collections/temperature/items?limit=0',
      "/collections/temperature/items?parameter-name=x'%20OR%201=1--&cursor=zzz",
      '/collections/temperature/position?coords=POINT(1)',
      '/collections/temperature/windows/2026-01-10T11:00:00Z/1.exe',
    ]) {
      const r = await api(bad);
      expect(r.status, bad).toBe(400);
      expect(((await r.json()) as { error: string }).error).toBeTruthy();
    }
    expect((await api('/collections/nope/items')).status).toBe(404);
  });

  it('pages through the same reading sent by two edges: both rows, one per page, none skipped', async () => {
    // Rows are keyed (time, id, edge): the same reading from two edges is two rows with one id, and
    // the paging cursor must tell them apart.
    const time = T0 - 5 * H;
    const twins = ['gw-twin-a', 'gw-twin-b', 'gw-twin-c'];
    for (const edge of twins) {
      await publishObservations(nats.url, edge, [reading({ edge, station: 1, time, value: 7 })]);
    }
    const at = new Date(time).toISOString();
    await waitFor('the three copies stored', async () => {
      const n = await db.query<{ n: string }>('SELECT count(*) AS n FROM observations WHERE time = $1', [at]);
      return Number(n.rows[0]?.n) === twins.length ? true : undefined;
    });
    const edges: string[] = [];
    let url = `/collections/temperature/items?datetime=${at}/${at}&limit=1`;
    for (let pages = 0; url && pages < 10; pages++) {
      const body = (await (await api(url)).json()) as {
        features: { id: string; properties: { edge: string } }[];
        links: { rel: string; href: string }[];
      };
      edges.push(...body.features.map((f) => f.properties.edge));
      const next = body.links.find((l) => l.rel === 'next')?.href;
      url = next ? next.slice(next.indexOf('/collections')) : '';
    }
    expect(edges.sort()).toEqual(twins);
  });

  it('lists windows and rebuilds one on request from the command line', async () => {
    const cliEnv = { ...process.env, ...env(name, storeEnv()) };
    const listed = await run(process.execPath, [cloudCli, 'datasets'], { env: cliEnv });
    expect(listed.stdout).toContain('temperature: window 3600s');
    expect(listed.stdout, listed.stdout).toMatch(/temperature\s+2026-01-10T11:00:00Z\s+built\s+1\s/);
    const audit = await run(
      process.execPath,
      [cloudCli, 'datasets', '--dataset', 'temperature', '--window', '2026-01-10T10:15:00Z'],
      { env: cliEnv },
    );
    expect(audit.stdout).toContain('temperature 2026-01-10T10:00:00Z');
    expect(audit.stdout).toMatch(
      /batches that touched it \(audit\):\n(\s+\S+\s+FB_OBS:\d+\s+edge gw-\S+\s+new rows \d+\s+round \d+\s+traces \d+[^\n]*\n)+/,
    );
    const before = (await versions('temperature')).filter((r) => r.window_start.getTime() === T0 + H).length;
    const rebuilt = await run(
      process.execPath,
      [cloudCli, 'rebuild', 'temperature', '2026-01-10T11:42:00Z'],
      {
        env: cliEnv,
      },
    );
    expect(rebuilt.stdout).toContain('window 2026-01-10T11:00:00Z of temperature is due now');
    await waitFor('the requested rebuild', async () => {
      const n = (await versions('temperature')).filter((r) => r.window_start.getTime() === T0 + H).length;
      return n > before ? true : undefined;
    });
    const bad = await run(process.execPath, [cloudCli, 'rebuild', 'nope', '2026-01-10T11:00:00Z'], {
      env: cliEnv,
    }).catch((err: { code: number; stderr: string }) => err);
    expect((bad as { code: number }).code).toBe(2);
  });
});
