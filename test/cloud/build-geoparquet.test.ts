import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  arrowFileToGeoParquet,
  buildWindowObject,
  FolderObjectStore,
  geoParquetExport,
  migrate,
  parseDatasets,
} from '@fieldbeam/cloud';
import { type Field, tableFromIPC } from 'apache-arrow';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TempDir, type TestPostgres, tempDir } from '../harness/index.js';

/**
 * A window build writes the GeoParquet itself, from the batches it reads (the metadata that depends
 * on every row, the box and the value column's CF entries, put in the footer at the end), and the
 * exporter takes that object instead of reading the Arrow object back. The file must be what the
 * exporter would have made from the Arrow object: same rows, geometry, `geo` and `ARROW:schema`.
 */
let postgres: TestPostgres;
let pool: pg.Pool;
let dir: TempDir;
let store: FolderObjectStore;
let duck: Awaited<ReturnType<DuckDBInstance['connect']>>;
const H = 3_600_000;
const START = Date.UTC(2026, 0, 12, 10);

beforeAll(async () => {
  postgres = await startPostgres();
  pool = new pg.Pool({ connectionString: postgres.url, max: 4 });
  pool.on('error', () => {});
  await migrate(pool);
  dir = tempDir('fieldbeam-build-geoparquet-');
  store = new FolderObjectStore(join(dir.path, 'objects'));
  duck = await (await DuckDBInstance.create(':memory:')).connect();
  await pool.query('SELECT fb_ensure_observation_partitions($1, $2)', [new Date(START), new Date(START + H)]);
  // 3 variables (one in two units, one without a CF name), stations at distinct places, every
  // 7th row without a position: more rows than fit one batch, so the build writes several.
  await pool.query(
    `INSERT INTO observations (id, source, edge, station, variable, value, unit, time, received, lat, lon, quality)
     SELECT 'r' || i, 'mqtt', 'gw-' || (i % 3), 'st-' || (i % 50),
            (ARRAY['air_temperature', 'relative_humidity', 'ws:battery'])[1 + i % 3], i / 10.0,
            CASE i % 3 WHEN 0 THEN 'degC' WHEN 1 THEN '%' ELSE (CASE WHEN i % 2 = 0 THEN 'V' ELSE 'mV' END) END,
            to_timestamp(($1::float8 + (i * 3599000.0 / $2)) / 1000), now(),
            CASE WHEN i % 7 = 0 THEN NULL ELSE 40 + (i % 50) / 10.0 END,
            CASE WHEN i % 7 = 0 THEN NULL ELSE -3 + (i % 50) / 7.0 END,
            CASE WHEN i % 11 = 0 THEN ARRAY['suspect'] END
     FROM generate_series(0, $2::int - 1) i`,
    [START, 300_000],
  );
  await pool.query('ANALYZE observations');
}, 120_000);

afterAll(async () => {
  await pool?.end();
  await store?.close();
  await postgres?.close();
  dir?.remove();
});

async function saved(key: string): Promise<string> {
  const bytes = await store.get(key);
  expect(bytes, key).toBeDefined();
  const file = join(dir.path, key.replace(/[/:]/g, '_'));
  writeFileSync(file, bytes ?? new Uint8Array());
  return file;
}

const kv = async (file: string) =>
  new Map(
    (
      await duck.runAndReadAll(
        `SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata('${file}')`,
      )
    )
      .getRowObjects()
      .map((r) => [String(r.k), String(r.v)]),
  );

/** The Arrow schema a Parquet file embeds (`ARROW:schema`: one IPC schema message). */
function embedded(value: string | undefined) {
  const eos = Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
  return tableFromIPC(Buffer.concat([Buffer.from(value ?? '', 'base64'), eos])).schema;
}
const metaOf = (fields: Field[]) =>
  Object.fromEntries(fields.map((f) => [f.name, Object.fromEntries(f.metadata)]));

describe('window builds with GeoParquet', () => {
  it('write the GeoParquet the exporter would make from the Arrow object, and the exporter takes it', {
    timeout: 120_000,
  }, async () => {
    const [def] = parseDatasets({ datasets: [{ name: 'geo', window: 'PT1H' }] });
    if (!def) throw new Error('no dataset');
    const w = {
      windowStart: new Date(START),
      windowEnd: new Date(START + H),
      version: 1,
      generation: 1,
      provisional: false,
    };
    const built = await buildWindowObject(pool, store, def, w, { geoParquet: true });
    expect(built.rows).toBe(300_000);
    expect(built.parquet).toEqual({
      key: 'datasets/geo/2026-01-12T10:00:00Z/1.parquet',
      bytes: expect.any(Number),
    });
    const fromBuild = await saved('datasets/geo/2026-01-12T10:00:00Z/1.parquet');

    // What the exporter makes when it reads the Arrow object back.
    const arrowFile = await saved(built.key);
    const { parquet, rows } = await arrowFileToGeoParquet(arrowFile);
    expect(rows).toBe(300_000);
    const fromArrow = join(dir.path, 'from-arrow.parquet');
    writeFileSync(fromArrow, parquet);

    // The same rows, with the same geometry, read by DuckDB (an independent reader).
    const count = async (sql: string) => Number((await duck.runAndReadAll(sql)).getRowObjects()[0]?.n);
    const cols = `epoch_ms(time) AS t, station, sensor, variable, value, text, unit, lat, lon, alt,
                  quality::VARCHAR AS q, source, edge, ST_AsText(geometry) AS g`;
    expect(await count(`SELECT count(*) AS n FROM read_parquet('${fromBuild}')`)).toBe(300_000);
    expect(
      await count(`SELECT count(*) AS n FROM (SELECT ${cols} FROM read_parquet('${fromBuild}')
                   EXCEPT ALL SELECT ${cols} FROM read_parquet('${fromArrow}'))`),
    ).toBe(0);
    expect(await count(`SELECT count(geometry) AS n FROM read_parquet('${fromBuild}')`)).toBe(
      300_000 - Math.ceil(300_000 / 7),
    );

    // The metadata known only after the last row: the box, and CF entries of every variable.
    const a = await kv(fromBuild);
    const b = await kv(fromArrow);
    expect(JSON.parse(a.get('geo') ?? '')).toEqual(JSON.parse(b.get('geo') ?? ''));
    expect(JSON.parse(a.get('geo') ?? '').columns.geometry.bbox).toEqual([-3, 40, -3 + 49 / 7, 44.9]);
    const sa = embedded(a.get('ARROW:schema'));
    const sb = embedded(b.get('ARROW:schema'));
    expect(Object.fromEntries(sa.metadata)).toEqual(Object.fromEntries(sb.metadata));
    expect(metaOf(sa.fields)).toEqual(metaOf(sb.fields));
    expect(sa.fields.map((f) => String(f.type))).toEqual(sb.fields.map((f) => String(f.type)));
    expect(
      JSON.parse(sa.fields.find((f) => f.name === 'value')?.metadata.get('units_by_variable') ?? ''),
    ).toEqual({
      air_temperature: 'degC',
      relative_humidity: '%',
    });

    // The exporter takes the build's object as it is.
    const exported = await geoParquetExport(
      store,
      new Set(['geo']),
    )({
      v: 1,
      dataset: 'geo',
      start: w.windowStart.toISOString(),
      end: w.windowEnd.toISOString(),
      version: 1,
      key: built.key,
      rows: built.rows,
      sha256: built.sha256,
      provisional: false,
    });
    expect(exported).toEqual({
      key: 'datasets/geo/2026-01-12T10:00:00Z/1.parquet',
      rows: 300_000,
      bytes: built.parquet && 'bytes' in built.parquet ? built.parquet.bytes : -1,
    });
  });

  it('without GeoParquet, writes only the Arrow object (the exporter encodes it)', async () => {
    const [def] = parseDatasets({ datasets: [{ name: 'geo', window: 'PT1H' }] });
    if (!def) throw new Error('no dataset');
    const w = {
      windowStart: new Date(START),
      windowEnd: new Date(START + H),
      version: 2,
      generation: 1,
      provisional: false,
    };
    const built = await buildWindowObject(pool, store, def, w);
    expect(built.parquet).toBeUndefined();
    expect(await store.head('datasets/geo/2026-01-12T10:00:00Z/2.parquet')).toBeUndefined();
  });
});
