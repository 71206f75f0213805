import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildWindowObject,
  copyBinary,
  copyLines,
  encodeRows,
  ensureStreams,
  FolderObjectStore,
  geoParquetExport,
  INGEST_COLUMNS,
  migrate,
  observationCopyLine,
  parseDatasets,
} from '@fieldbeam/cloud';
import {
  type BatchEncoding,
  encodeBatchV2,
  type Observation,
  type ObservationBatch,
  observationId,
  streams,
  subjects,
} from '@fieldbeam/protocol';
import {
  builtCli,
  freePort,
  type NatsServer,
  spawnProcess,
  startNatsServer,
  startPostgres,
  type TestPostgres,
  tempDir,
} from '@fieldbeam/test/harness';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { clusterCpuSeconds, postmasterPid } from './lib/pg-cpu.js';
import { cpuSeconds } from './lib/proc.js';

const N = Number(process.env.BENCH_CLOUD_N ?? 1_000_000);
const STATIONS = 200;
const VARIABLES = ['air_temperature', 'relative_humidity'];
// An hour of yesterday: recent enough for the collector's accepted time range (FB_INGEST_MAX_AGE).
const WINDOW_START = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 86_400_000;
const WINDOW_MS = 3_600_000;
const BUILD_RUNS = 3;
/**
 * How the stream is filled: `v2` (columns + zstd, what edges send by default) or `v1` (JSON), as
 * `BENCH_CLOUD_ENCODING` says.
 */
const ENCODING: BatchEncoding = process.env.BENCH_CLOUD_ENCODING === 'v1' ? 'v1' : 'v2';
/** Observations per batch, as an edge sends them: `forward.v2_batch_observations` (2,000) or v1's 500. */
const BATCH = ENCODING === 'v2' ? 2000 : 500;

const results = join(dirname(fileURLToPath(import.meta.url)), '../results');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/**
 * N distinct readings, all inside one one-hour window: STATIONS x VARIABLES x time steps, ten edges.
 * Yields them as edge batches of BATCH in the order live edges would fill them (time-ordered overall,
 * edges interleaved), so the stream and the COPY baseline see the same rows in the same order. Nothing
 * is kept: a million observation objects would slow every GC of this process.
 */
function* observationBatches(): Generator<{ edge: string; first: number; observations: Observation[] }> {
  const perSeries = Math.ceil(N / (STATIONS * VARIABLES.length));
  const step = Math.floor(WINDOW_MS / perSeries);
  const open = new Map<string, Observation[]>();
  const sent = new Map<string, number>();
  let made = 0;
  for (let t = 0; t < perSeries && made < N; t++) {
    const time = new Date(WINDOW_START + t * step).toISOString();
    for (let s = 0; s < STATIONS && made < N; s++) {
      const station = `st-${s}`;
      const edge = `gw-${s % 10}`;
      for (const variable of VARIABLES) {
        if (made >= N) break;
        made++;
        const value =
          Math.round((variable === 'air_temperature' ? 10 + s / 10 + t / 1000 : 50 + t / 100) * 100) / 100;
        const list = open.get(edge) ?? [];
        open.set(edge, list);
        list.push({
          id: observationId({ source: 'mqtt', station, variable, time, value }),
          source: 'mqtt',
          edge,
          station,
          variable,
          value,
          unit: variable === 'air_temperature' ? 'degC' : '%',
          time,
          received: time,
          lat: 46 + s / 1000,
          lon: 7 + s / 1000,
        });
        if (list.length === BATCH) {
          const first = (sent.get(edge) ?? 0) + 1;
          sent.set(edge, first + BATCH - 1);
          open.delete(edge);
          yield { edge, first, observations: list };
        }
      }
    }
  }
  for (const [edge, list] of open) yield { edge, first: (sent.get(edge) ?? 0) + 1, observations: list };
}

async function preload(nats: NatsServer): Promise<number> {
  const nc = await connect({ servers: nats.url });
  try {
    await ensureStreams(await jetstreamManager(nc), Object.values(streams));
    const js = jetstream(nc);
    const enc = new TextEncoder();
    let messages = 0;
    const inflight: Promise<unknown>[] = [];
    for (const { edge, first, observations } of observationBatches()) {
      const last = first + observations.length - 1;
      const batch: ObservationBatch = {
        v: 1,
        edge,
        seq: [first, last],
        sent: new Date().toISOString(),
        observations,
      };
      const { observations: _, ...head } = batch;
      const data = ENCODING === 'v2' ? encodeBatchV2(head, observations) : enc.encode(JSON.stringify(batch));
      inflight.push(
        js.publish(subjects.obs(edge), data, {
          msgID: `${edge}:bench:${first}-${last}`,
        }),
      );
      messages++;
      if (inflight.length >= 64) await Promise.all(inflight.splice(0));
    }
    await Promise.all(inflight);
    return messages;
  } finally {
    await nc.close();
  }
}

/** Connections the binary COPY peer loads on: the collector's default parallel commits. */
const PEER_CONNECTIONS = 2;

/**
 * Binary COPY of every row, the batches dealt out to PEER_CONNECTIONS connections in turn, each
 * loading its share in one COPY. Rows are encoded before timing starts. Returns seconds.
 */
async function binaryCopyPeer(pool: pg.Pool): Promise<number> {
  const shares: Uint8Array[][] = Array.from({ length: PEER_CONNECTIONS }, () => []);
  let i = 0;
  for (const b of observationBatches())
    (shares[i++ % PEER_CONNECTIONS] as Uint8Array[]).push(encodeRows(b.observations).bytes);
  const clients = await Promise.all(shares.map(() => pool.connect()));
  try {
    const t = performance.now();
    await Promise.all(
      clients.map((c, k) =>
        copyBinary(
          c,
          `COPY observations (${INGEST_COLUMNS}) FROM STDIN (FORMAT binary)`,
          shares[k] as Uint8Array[],
        ),
      ),
    );
    return (performance.now() - t) / 1000;
  } finally {
    for (const c of clients) c.release();
  }
}

async function count(pool: pg.Pool): Promise<number> {
  return Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM observations')).rows[0]?.n);
}

/**
 * Runs the collector (`fieldbeam-cloud run`, its own process, as deployed) with a fresh consumer over
 * everything in the stream; obs/s from its start until its counter reaches N.
 */
async function measureIngest(nats: NatsServer, postgres: TestPostgres, dataDir: string, consumer: string) {
  const port = await freePort();
  const pgPid = postmasterPid(postgres.port);
  const pgCpu0 = pgPid ? clusterCpuSeconds(pgPid) : Number.NaN;
  // BENCH_CLOUD_PROFILE=<dir>: the collector (and its decode threads) under --cpu-prof.
  const profile = process.env.BENCH_CLOUD_PROFILE;
  const started = performance.now();
  const proc = spawnProcess(
    process.execPath,
    [...(profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : []), builtCli.cloud, 'run'],
    {
      env: {
        ...process.env,
        NATS_URL: nats.url,
        DATABASE_URL: postgres.url,
        FB_DATA_DIR: dataDir,
        FB_HTTP_PORT: String(port),
        FB_INGEST_CONSUMER: consumer,
        LOG_LEVEL: 'warn',
      },
    },
  );
  // The first answer of /metrics: the collector is up (its start, module loading and connections
  // behind it), for the steady rate beside the one from the process's start.
  let up: { at: number; done: number; cpu: number } | undefined;
  const cpuNow = () => (proc.child.pid ? cpuSeconds(proc.child.pid) : Number.NaN);
  try {
    for (;;) {
      if (proc.child.exitCode !== null) throw new Error(`collector exited:\n${proc.output()}`);
      const text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => r.text(),
        () => '',
      );
      const done = Number(/^fb_cloud_ingest_observations_total (\d+)/m.exec(text)?.[1] ?? 0);
      if (text && !up) up = { at: performance.now(), done, cpu: cpuNow() };
      if (done >= N) {
        const now = performance.now();
        const rate = N / ((now - started) / 1000);
        const steady = up && now > up.at ? (N - up.done) / ((now - up.at) / 1000) : rate;
        const lines = text
          .split('\n')
          .filter((l) => /^fb_cloud_ingest_(rounds_total|commit_seconds_(sum|count))/.test(l));
        process.stdout.write(`  ${lines.join('\n  ')}\n`);
        // CPU per observation: a figure the load on the box moves less than a rate.
        const cpu = cpuNow();
        const collectorUs = (cpu * 1e6) / N;
        // From the first answer of /metrics: without the process's start (module loading, connections).
        const collectorSteadyUs = up ? ((cpu - up.cpu) * 1e6) / (N - up.done) : collectorUs;
        const postgresUs = pgPid ? ((clusterCpuSeconds(pgPid) - pgCpu0) * 1e6) / N : Number.NaN;
        process.stdout.write(
          `  CPU per observation: collector ${collectorUs.toFixed(2)} us (${collectorSteadyUs.toFixed(2)} once up), Postgres ${postgresUs.toFixed(2)} us\n`,
        );
        return { rate, steady, collectorUs, collectorSteadyUs, postgresUs };
      }
      // Every 50 ms: each scrape costs the collector its default metrics (a 20 ms poll was ~8% of its main thread).
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await proc.stop();
  }
}

export async function runCloudSuite(argv: string[]): Promise<void> {
  // `pnpm bench cloud --build [rows,rows,...]`: build time and peak RSS by window size (cloud-build.ts).
  const at = argv.indexOf('--build');
  if (at >= 0) {
    const sizes = argv[at + 1]?.startsWith('-') === false ? (argv[at + 1] as string).split(',') : [];
    await (await import('./cloud-build.js')).runCloudBuildBench(sizes);
    return;
  }
  // `pnpm bench cloud --collectors 1,2,3 [--replicas 3]`: ingest rate by collector count (cloud-scale.ts).
  if (argv.includes('--collectors')) {
    await (await import('./cloud-scale.js')).runCloudScaleBench(argv);
    return;
  }
  // `pnpm bench cloud --ingest`: the COPY peers and ingest only (no replay, no build).
  await runCloudBench({ ingestOnly: argv.includes('--ingest') });
}

export async function runCloudBench(opts: { ingestOnly?: boolean } = {}): Promise<Record<string, unknown>> {
  // The box may be shared: the load average before and after says how much the figures can be trusted.
  const loadBefore = loadavg().map((l) => Math.round(l * 100) / 100);
  const dir = tempDir('fieldbeam-bench-cloud-');
  const [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  const pool = new pg.Pool({ connectionString: postgres.url, max: 4 });
  pool.on('error', () => {}); // idle connections dropped when Postgres stops at the end
  try {
    await migrate(pool);
    process.stdout.write(`pre-loading the OBS stream with ${N} observations (${ENCODING} batches)...\n`);
    const messages = await preload(nats);

    // Peers in the same run: raw COPY of the same rows, in the same order, into the same table. First
    // binary COPY on as many connections as the collector commits on (what ingest is measured
    // against), then text COPY on one connection (the figure reported before ingest wrote binary).
    await pool.query('SELECT fb_ensure_observation_partitions($1, $1)', [new Date(WINDOW_START)]);
    const pgPid = postmasterPid(postgres.port);
    const pgUs = async (work: () => Promise<unknown>) => {
      const c0 = pgPid ? clusterCpuSeconds(pgPid) : Number.NaN;
      await work();
      return pgPid ? ((clusterCpuSeconds(pgPid) - c0) * 1e6) / N : Number.NaN;
    };
    let copySeconds = 0;
    const copyPgUs = await pgUs(async () => {
      copySeconds = await binaryCopyPeer(pool);
    });
    if ((await count(pool)) !== N) throw new Error('binary COPY baseline did not store every row');
    await pool.query('TRUNCATE observations');
    const client = await pool.connect();
    let textCopySeconds: number;
    let textCopyPgUs: number;
    try {
      const lines = function* () {
        for (const b of observationBatches()) for (const o of b.observations) yield observationCopyLine(o);
      };
      // Text made before timing starts, so this is the database's figure, not the generator's.
      const text: string[] = [...lines()];
      const t = performance.now();
      textCopyPgUs = await pgUs(() =>
        copyLines(client, `COPY observations (${INGEST_COLUMNS}) FROM STDIN`, text),
      );
      textCopySeconds = (performance.now() - t) / 1000;
      text.length = 0;
    } finally {
      client.release();
    }
    if ((await count(pool)) !== N) throw new Error('COPY baseline did not store every row');
    await pool.query('TRUNCATE observations');
    // CHECKPOINT needs the superuser; the collector's own role may not run it.
    const admin = new pg.Client(postgres.superuserUrl);
    await admin.connect();
    await admin.query('CHECKPOINT').finally(() => admin.end());

    process.stdout.write('ingest (collector, idempotent COPY + ON CONFLICT)...\n');
    const {
      rate: ingest,
      steady: ingestSteady,
      collectorUs,
      collectorSteadyUs,
      postgresUs,
    } = await measureIngest(nats, postgres, dir.path, 'bench-ingest');
    const stored = await count(pool);
    if (stored !== N) throw new Error(`ingest stored ${stored} of ${N}`);
    const copy = N / copySeconds;
    const textCopy = N / textCopySeconds;
    const r2 = (x: number) => Math.round(x * 100) / 100;
    const ingestFigures = {
      encoding: ENCODING,
      observations: N,
      streamMessages: messages,
      ingest_obs_per_s: Math.round(ingest),
      ingest_steady_obs_per_s: Math.round(ingestSteady),
      copy_limit_obs_per_s: Math.round(copy),
      copy_limit_how: `binary COPY on ${PEER_CONNECTIONS} connections (the collector's default parallel commits)`,
      copy_text_1conn_obs_per_s: Math.round(textCopy),
      ingest_vs_copy: r2(ingest / copy),
      ingest_steady_vs_copy: r2(ingestSteady / copy),
      ingest_vs_text_copy_1conn: r2(ingest / textCopy),
      ingest_steady_vs_text_copy_1conn: r2(ingestSteady / textCopy),
      cpu_us_per_obs: {
        collector: r2(collectorUs),
        collector_once_up: r2(collectorSteadyUs),
        postgres_ingest: r2(postgresUs),
        postgres_binary_copy: r2(copyPgUs),
        postgres_text_copy: r2(textCopyPgUs),
      },
    };
    if (opts.ingestOnly) {
      const out = {
        suite: 'cloud --ingest',
        measuredAt: new Date().toISOString(),
        machine: {
          cpus: cpus().length,
          node: process.version,
          loadavgBefore: loadBefore,
          loadavgAfter: loadavg().map((l) => r2(l)),
        },
        ...ingestFigures,
      };
      mkdirSync(results, { recursive: true });
      writeFileSync(join(results, 'cloud-ingest.json'), `${JSON.stringify(out, null, 2)}\n`);
      process.stdout.write(`${JSON.stringify(out, null, 2)}\nwritten to bench/results/cloud-ingest.json\n`);
      return out;
    }
    process.stdout.write('replay (a second consumer over the same stream: every row a conflict)...\n');
    const { rate: replay } = await measureIngest(nats, postgres, dir.path, 'bench-replay');
    if ((await count(pool)) !== N) throw new Error('replay changed the row count');

    process.stdout.write('build (one window of all rows -> Arrow object -> GeoParquet)...\n');
    const [def] = parseDatasets({ datasets: [{ name: 'bench', window: 'PT1H' }] });
    if (!def) throw new Error('no dataset');
    const store = new FolderObjectStore(join(dir.path, 'objects'));
    const runs: {
      arrow: number;
      parquet: number;
      total: number;
      rows: number;
      arrowBytes: number;
      parquetBytes: number;
    }[] = [];
    for (let version = 1; version <= BUILD_RUNS; version++) {
      const t0 = performance.now();
      // As a collector running the GeoParquet exporter builds: the GeoParquet written by the build.
      const built = await buildWindowObject(
        pool,
        store,
        def,
        {
          windowStart: new Date(WINDOW_START),
          windowEnd: new Date(WINDOW_START + WINDOW_MS),
          version,
          generation: 1,
          provisional: false,
        },
        { geoParquet: true },
      );
      const t1 = performance.now();
      const exported = await geoParquetExport(
        store,
        new Set(['bench']),
      )({
        v: 1,
        dataset: 'bench',
        start: new Date(WINDOW_START).toISOString(),
        end: new Date(WINDOW_START + WINDOW_MS).toISOString(),
        version,
        key: built.key,
        rows: built.rows,
        sha256: built.sha256,
        provisional: false,
      });
      const rows = exported.rows ?? 0;
      const t2 = performance.now();
      if (built.rows !== N || rows !== N) throw new Error(`build wrote ${built.rows}/${rows} rows of ${N}`);
      runs.push({
        arrow: (t1 - t0) / 1000,
        parquet: (t2 - t1) / 1000,
        total: (t2 - t0) / 1000,
        rows,
        arrowBytes: built.bytes,
        parquetBytes: exported.bytes ?? 0,
      });
    }
    const build = median(runs.map((r) => r.total));
    const out = {
      suite: 'cloud',
      measuredAt: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        memGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        loadavgBefore: loadBefore,
        loadavgAfter: loadavg().map((l) => Math.round(l * 100) / 100),
      },
      ...ingestFigures,
      replay_obs_per_s: Math.round(replay),
      build_1m_rows_s: Math.round(build * 1000) / 1000,
      build_runs: runs.map((r) => ({
        arrow_s: Math.round(r.arrow * 1000) / 1000,
        geoparquet_s: Math.round(r.parquet * 1000) / 1000,
        total_s: Math.round(r.total * 1000) / 1000,
        arrow_bytes: r.arrowBytes,
        geoparquet_bytes: r.parquetBytes,
      })),
      targets: { ingest_obs_per_s: 150_000, ingest_vs_copy: 0.9, build_1m_rows_s: 1.5 },
      pass: {
        ingest_obs_per_s: ingest >= 150_000,
        ingest_vs_copy: ingest / copy >= 0.9,
        build_1m_rows_s: build <= 1.5,
      },
    };
    mkdirSync(results, { recursive: true });
    writeFileSync(join(results, 'cloud.json'), `${JSON.stringify(out, null, 2)}\n`);
    const rows: [string, string, string][] = [
      ['ingest_obs_per_s', String(out.ingest_obs_per_s), '>= 150000'],
      ['copy_limit_obs_per_s (peer, binary)', String(out.copy_limit_obs_per_s), '-'],
      ['ingest_vs_copy', String(out.ingest_vs_copy), '>= 0.9'],
      ['ingest_steady_vs_copy (from /metrics up)', String(out.ingest_steady_vs_copy), '-'],
      ['copy_text_1conn_obs_per_s', String(out.copy_text_1conn_obs_per_s), '-'],
      ['replay_obs_per_s (all conflicts)', String(out.replay_obs_per_s), '-'],
      ['build_1m_rows_s (median of 3)', String(out.build_1m_rows_s), '<= 1.5'],
    ];
    const w = [34, 12, 10];
    process.stdout.write(
      `\n${['figure', 'measured', 'target'].map((h, i) => h.padEnd(w[i] ?? 0)).join(' ')}\n${rows
        .map((r) => r.map((c, i) => c.padEnd(w[i] ?? 0)).join(' '))
        .join('\n')}\nwritten to bench/results/cloud.json\n`,
    );
    return out;
  } finally {
    await pool.end();
    await Promise.all([nats.close(), postgres.close()]);
    dir.remove();
  }
}
