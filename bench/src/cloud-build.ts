import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { migrate } from '@fieldbeam/cloud';
import { startPostgres, tempDir } from '@fieldbeam/test/harness';
import pg from 'pg';

const here = dirname(fileURLToPath(import.meta.url));
const results = join(here, '../results');
const run = promisify(execFile);
const STATIONS = 200;
const WINDOW_MS = 3_600_000;

/**
 * Fills one one-hour window with `n` readings made by Postgres itself (200 stations x 2 variables x
 * time steps, ten edges, the same shape as the ingest part's), so that loading 10M rows costs no
 * memory here; then ANALYZE, as autovacuum would after such a load.
 */
export async function fill(pool: pg.Pool, superuserUrl: string, start: number, n: number): Promise<void> {
  const steps = Math.ceil(n / (STATIONS * 2));
  const step = WINDOW_MS / steps;
  await pool.query('TRUNCATE observations');
  await pool.query('SELECT fb_ensure_observation_partitions($1, $2)', [
    new Date(start),
    new Date(start + WINDOW_MS),
  ]);
  await pool.query(
    `INSERT INTO observations (id, source, edge, station, variable, value, unit, time, received, lat, lon)
     SELECT md5(t || ':' || s || ':' || v), 'mqtt', 'gw-' || (s % 10), 'st-' || s,
            CASE v WHEN 0 THEN 'air_temperature' ELSE 'relative_humidity' END,
            round((CASE v WHEN 0 THEN 10 + s / 10.0 + t / 1000.0 ELSE 50 + t / 100.0 END)::numeric, 2)::float8,
            CASE v WHEN 0 THEN 'degC' ELSE '%' END,
            to_timestamp(($1::float8 + floor(t * $2::float8)) / 1000), to_timestamp(($1::float8 + floor(t * $2::float8)) / 1000),
            46 + s / 1000.0, 7 + s / 1000.0
     FROM generate_series(0, $3::int - 1) t, generate_series(0, ${STATIONS - 1}) s, generate_series(0, 1) v
     ORDER BY t, s, v
     LIMIT $4`,
    [start, step, steps, n],
  );
  await pool.query('ANALYZE observations');
  const admin = new pg.Client(superuserUrl);
  await admin.connect();
  await admin.query('CHECKPOINT').finally(() => admin.end());
}

interface BuildRun {
  rows: number;
  arrow_s: number;
  geoparquet_s: number;
  total_s: number;
  arrow_bytes: number;
  geoparquet_bytes: number;
  rss_before_mb: number;
  peak_rss_mb: number;
  cpu_us_per_row: number;
  geoparquet_in_build: boolean;
}

/**
 * `pnpm bench cloud --build [rows,rows,...]`: a window of each size (default 1M, 5M, 10M rows) built into
 * its Arrow object and exported as GeoParquet, each run in a fresh process whose peak RSS is reported.
 * Build memory is bounded by slices, so the peak should stay flat while the time grows linearly.
 * Builds write the GeoParquet themselves (as a collector running the GeoParquet exporter does);
 * `BENCH_BUILD_GEOPARQUET=exporter` measures the older path instead, the exporter reading the Arrow
 * object back. `cpu_us_per_row` is the build process's CPU, less moved by other work than the time.
 */
export async function runCloudBuildBench(argv: string[]): Promise<Record<string, unknown>> {
  const sizes = argv.length > 0 ? argv.map(Number) : [1_000_000, 5_000_000, 10_000_000];
  const runs = Number(process.env.BENCH_BUILD_RUNS ?? 3);
  const loadBefore = loadavg().map((l) => Math.round(l * 100) / 100);
  const dir = tempDir('fieldbeam-bench-build-');
  const postgres = await startPostgres();
  const pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
  pool.on('error', () => {});
  const start = Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS - 86_400_000;
  const bySize: Record<string, unknown>[] = [];
  try {
    await migrate(pool);
    for (const n of sizes) {
      process.stdout.write(`filling a window with ${n} rows...\n`);
      await fill(pool, postgres.superuserUrl, start, n);
      const done: BuildRun[] = [];
      for (let version = 1; version <= runs; version++) {
        const { stdout, stderr } = await run(process.execPath, [join(here, 'cloud-build-one.js')], {
          env: {
            ...process.env,
            DATABASE_URL: postgres.url,
            BENCH_STORE_DIR: dir.path,
            BENCH_WINDOW_START: String(start),
            BENCH_WINDOW_END: String(start + WINDOW_MS),
            BENCH_VERSION: String(version),
          },
          maxBuffer: 1 << 20,
        });
        const last = stdout.trim().split('\n').pop() ?? '';
        if (!last.startsWith('{'))
          throw new Error(`build of ${n} rows printed no result:\n${stdout}${stderr}`);
        const r = JSON.parse(last) as BuildRun;
        if (r.rows !== n) throw new Error(`build wrote ${r.rows} rows of ${n}`);
        process.stdout.write(
          `  ${n} rows: build ${r.arrow_s.toFixed(2)} s + GeoParquet ${r.geoparquet_s.toFixed(2)} s = ${r.total_s.toFixed(2)} s, peak RSS ${r.peak_rss_mb} MB, CPU ${r.cpu_us_per_row} µs/row${r.geoparquet_in_build ? ' (GeoParquet in the build)' : ''}\n`,
        );
        done.push(r);
      }
      const median = [...done].sort((a, b) => a.total_s - b.total_s)[Math.floor(done.length / 2)] as BuildRun;
      bySize.push({
        rows: n,
        total_s: Math.round(median.total_s * 1000) / 1000,
        arrow_s: Math.round(median.arrow_s * 1000) / 1000,
        geoparquet_s: Math.round(median.geoparquet_s * 1000) / 1000,
        peak_rss_mb: Math.max(...done.map((r) => r.peak_rss_mb)),
        cpu_us_per_row: median.cpu_us_per_row,
        geoparquet_in_build: median.geoparquet_in_build,
        arrow_bytes: median.arrow_bytes,
        geoparquet_bytes: median.geoparquet_bytes,
        runs: done,
      });
    }
  } finally {
    await pool.end();
    await postgres.close();
    dir.remove();
  }
  const out = {
    suite: 'cloud-build',
    measuredAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpu: cpus()[0]?.model,
      memGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      loadavgBefore: loadBefore,
      loadavgAfter: loadavg().map((l) => Math.round(l * 100) / 100),
    },
    sizes: bySize,
    targets: { build_1m_rows_s: 1.5 },
  };
  mkdirSync(results, { recursive: true });
  writeFileSync(join(results, 'cloud-build.json'), `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(
    `\n${['rows', 'total s', 'arrow s', 'geoparquet s', 'peak RSS MB'].join('\t')}\n${bySize
      .map((s) => [s.rows, s.total_s, s.arrow_s, s.geoparquet_s, s.peak_rss_mb].join('\t'))
      .join('\n')}\nwritten to bench/results/cloud-build.json\n`,
  );
  return out;
}
