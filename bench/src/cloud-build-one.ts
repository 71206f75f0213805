import { join } from 'node:path';
import { buildWindowObject, FolderObjectStore, geoParquetExport, parseDatasets } from '@fieldbeam/cloud';
import pg from 'pg';

/**
 * One window build and its GeoParquet export (the exporter's own code), alone in this process, so that the process's peak RSS
 * is the build's (cloud-build.ts runs it once per size and run). Prints one JSON line.
 */
async function main(): Promise<void> {
  const start = new Date(Number(process.env.BENCH_WINDOW_START));
  const end = new Date(Number(process.env.BENCH_WINDOW_END));
  const version = Number(process.env.BENCH_VERSION ?? 1);
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
  const store = new FolderObjectStore(join(process.env.BENCH_STORE_DIR ?? '.', 'objects'));
  const [def] = parseDatasets({ datasets: [{ name: 'bench', window: 'PT1H' }] });
  if (!def) throw new Error('no dataset');
  const rssBefore = process.memoryUsage().rss;
  try {
    const t0 = performance.now();
    // As a collector running the GeoParquet exporter builds (the default); `exporter`: the build
    // writes only the Arrow object and the exporter reads it back and encodes it (the older path).
    const geoParquet = process.env.BENCH_BUILD_GEOPARQUET !== 'exporter';
    const built = await buildWindowObject(
      pool,
      store,
      def,
      { windowStart: start, windowEnd: end, version, generation: 1, provisional: false },
      { geoParquet },
    );
    const t1 = performance.now();
    // What the GeoParquet exporter does with the announced version.
    const exported = await geoParquetExport(
      store,
      new Set(['bench']),
    )({
      v: 1,
      dataset: 'bench',
      start: start.toISOString(),
      end: end.toISOString(),
      version,
      key: built.key,
      rows: built.rows,
      sha256: built.sha256,
      provisional: false,
    });
    const rows = exported.rows ?? 0;
    const t2 = performance.now();
    process.stdout.write(
      `${JSON.stringify({
        rows,
        built_rows: built.rows,
        geoparquet_in_build: geoParquet,
        arrow_s: (t1 - t0) / 1000,
        geoparquet_s: (t2 - t1) / 1000,
        total_s: (t2 - t0) / 1000,
        arrow_bytes: built.bytes,
        geoparquet_bytes: exported.bytes,
        rss_before_mb: Math.round(rssBefore / 2 ** 20),
        // resourceUsage().maxRSS is in KiB: the peak of this process, build and export together.
        peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
        // CPU of this process (µs per row): less moved by other work on the box than the wall time.
        cpu_us_per_row: (() => {
          const u = process.resourceUsage();
          return Math.round(((u.userCPUTime + u.systemCPUTime) / Math.max(1, rows)) * 100) / 100;
        })(),
      })}\n`,
    );
  } finally {
    await pool.end();
    await store.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
