import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FleetStore, fleetEntries, formatFleetTable } from '@fieldbeam/cloud';
import { type CentralSensors, createCentralSensors, parseEdgeConfig } from '@fieldbeam/edge';
import { type EdgeStatus, type SensorState, subjects } from '@fieldbeam/protocol';
import { descendants, startCollectorProcess, startPostgres, tempDir, waitFor } from '@fieldbeam/test/harness';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { pino } from 'pino';
import { CpuMeter, cpuSeconds, RssSampler } from './lib/proc.js';
import { startBenchNats } from './lib/servers.js';
import { sleep } from './lib/stats.js';
import { formatTable } from './lib/table.js';

const results = join(dirname(fileURLToPath(import.meta.url)), '../results');
const cloudCli = fileURLToPath(new URL('cli.js', import.meta.resolve('@fieldbeam/cloud')));

export interface FleetFlags {
  edges: number;
  intervalMs: number;
  seconds: number;
  connections: number;
  sensors: number;
  listRuns: number;
  applyEdges: number;
}

function parseFlags(argv: string[]): FleetFlags {
  const flags: FleetFlags = {
    edges: 1000,
    intervalMs: 5000,
    seconds: 60,
    connections: 4,
    sensors: 8,
    listRuns: 7,
    applyEdges: 50,
  };
  const bounds: Record<keyof FleetFlags, [number, number]> = {
    edges: [1, 20_000],
    intervalMs: [500, 60_000],
    seconds: [10, 600],
    connections: [1, 64],
    sensors: [0, 200],
    listRuns: [1, 50],
    applyEdges: [1, 1000],
  };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]
      ?.replace(/^--/, '')
      .replace(/-(\w)/g, (_, c: string) => c.toUpperCase()) as keyof FleetFlags;
    if (!(name in flags)) continue;
    const v = Number(argv[++i]);
    const [min, max] = bounds[name];
    if (!Number.isInteger(v) || v < min || v > max)
      throw new Error(`--${argv[i - 1]}: a whole number from ${min} to ${max}`);
    flags[name] = v;
  }
  return flags;
}

const HELP = `pnpm bench fleet [--edges 1000] [--interval-ms 5000] [--seconds 60] [--connections 4] [--sensors 8] [--list-runs 7] [--apply-edges 50]
  Simulated edges (status publishers over a few NATS connections, not agents) heartbeat to one collector
  (fieldbeam-cloud run, real Postgres). Measures the collector's CPU and RSS idle and with the fleet
  (the registry's cost is the difference), and how long fieldbeam-cloud edge list takes. Then
  --apply-edges edges poll the central sensor bucket with the agent's own reader (central_poll_ms
  default, 5 s) and send a heartbeat as soon as each applied a change: the time from fieldbeam-cloud sensors add --all until the fleet
  registry shows the new revision for the last of them.
`;

/** A heartbeat as an agent of this version sends it, with `sensors` sensors. */
function heartbeat(edge: string, i: number, sensors: number, intervalMs: number, now: Date): EdgeStatus {
  const list: SensorState[] = Array.from({ length: sensors }, (_, s) => ({
    topic: `zigbee2mqtt/${edge}-sensor-${s}`,
    decoder: 'zigbee2mqtt',
    station: `${edge}-st-${s}`,
    origin: s % 2 ? 'central' : 'auto',
    lastReadingTime: now.toISOString(),
  }));
  return {
    v: 1,
    edge,
    time: now.toISOString(),
    version: '0.1.0',
    uptimeS: 3600 + i,
    buffer: {
      depth: i % 7,
      bytes: (i % 7) * 300,
      capacityBytes: 256 * 2 ** 20,
      oldestUnsentAgeS: i % 7 ? 1.2 : null,
      dropped: 0,
    },
    rates: { inPerS: sensors / 10, outPerS: sensors / 10 },
    rejected: 0,
    diskFreeBytes: 12e9,
    clock: 'synced',
    uplink: 'connected',
    intervalMs,
    bufferId: `buf-${edge}`,
    sensors: list,
    sensorCount: sensors,
    config: { revision: 3, appliedAt: now.toISOString(), error: null, refusedRevision: null },
  };
}

/**
 * Publishes every edge's heartbeat once per interval, spread evenly over it (as independent agents'
 * timers are), over `connections` connections. Returns the stop function.
 */
export function heartbeatLoad(
  conns: NatsConnection[],
  flags: FleetFlags,
): { stop(): Promise<void>; sent(): number } {
  const edges = Array.from({ length: flags.edges }, (_, i) => `sim-${String(i).padStart(5, '0')}`);
  const tickMs = 50;
  const perTick = flags.edges / (flags.intervalMs / tickMs);
  let next = 0;
  let credit = 0;
  let sent = 0;
  const timer = setInterval(() => {
    credit += perTick;
    const now = new Date();
    for (; credit >= 1; credit--) {
      const i = next++ % edges.length;
      const edge = edges[i] as string;
      const body = JSON.stringify(heartbeat(edge, i, flags.sensors, flags.intervalMs, now));
      (conns[i % conns.length] as NatsConnection).publish(subjects.edgeStatus(edge), body);
      sent++;
    }
  }, tickMs);
  return {
    sent: () => sent,
    async stop() {
      clearInterval(timer);
      await Promise.all(conns.map((c) => c.flush()));
    },
  };
}

/**
 * `sensors add --all` to `edges` edges: each runs the agent's central config reader
 * (createCentralSensors, polling every central_poll_ms, default 5 s) on one connection and heartbeats when it applied a change (a real agent
 * reports it at its next heartbeat, status_interval_ms). Returns the ms until the registry shows the
 * new revision for every one, and the CLI's own time.
 */
async function centralApplyMs(
  nc: NatsConnection,
  edges: readonly string[],
  env: NodeJS.ProcessEnv,
  databaseUrl: string,
  dataDir: string,
  intervalMs: number,
): Promise<{ totalMs: number; cliMs: number; revision: number }> {
  const log = pino({ level: 'silent' });
  const metrics = { centralConfigRefused: { inc() {} }, centralConfigRevision: { set() {} } } as never;
  const { auto_register } = parseEdgeConfig({ edge: 'bench', nats: { servers: ['nats://127.0.0.1:4222'] } });
  const watchers: CentralSensors[] = [];
  let applies = 0;
  edges.forEach((edge, i) => {
    const w = createCentralSensors({
      edge,
      dataDir: join(dataDir, edge),
      local: { sensors: [], autoRegister: auto_register },
      log,
      metrics,
    });
    watchers.push(w);
    w.watch(
      async () => nc,
      () => {
        applies++;
        const beat = { ...heartbeat(edge, i, 0, intervalMs, new Date()), config: w.configState() };
        nc.publish(subjects.edgeStatus(edge), JSON.stringify(beat));
      },
    );
  });
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    await sleep(1000); // the first reads are done
    const t0 = performance.now();
    const add = await run(
      [
        'sensors',
        'add',
        '--all',
        '--topic',
        'bench/+station/t',
        '--decoder',
        'number',
        '--decoder-json',
        '{"variable":"air_temperature","unit":"degC"}',
      ],
      env,
    );
    if (add.code !== 0) throw new Error(`sensors add --all failed: ${add.stderr}`);
    const revision = Number(/revision (\d+)/.exec(add.stdout)?.[1]);
    await waitFor(
      `${edges.length} edges reporting revision ${revision}`,
      async () => {
        const { rows } = await pool.query<{ n: string }>(
          'SELECT count(*) AS n FROM fleet_edges WHERE edge = ANY($1) AND config_revision >= $2',
          [edges, revision],
        );
        return Number(rows[0]?.n) >= edges.length ? true : undefined;
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message} (${applies} applies seen)`);
    });
    return { totalMs: performance.now() - t0, cliMs: add.ms, revision };
  } finally {
    await pool.end();
    await Promise.all(watchers.map((w) => w.close()));
  }
}

function run(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ ms: number; stdout: string; stderr: string; code: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [cloudCli, ...args], { env, maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) =>
      resolve({ ms: performance.now() - t0, stdout, stderr, code: err ? 1 : 0 }),
    );
  });
}

/** CPU seconds of the Postgres listening on `port`: its postmaster and every backend alive now. */
function postgresCpuSeconds(port: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const p = argv.indexOf('-p');
    if (!argv[0]?.endsWith('postgres') || p < 0 || argv[p + 1] !== String(port)) continue;
    const root = Number(entry);
    return [root, ...descendants(root)].reduce((sum, pid) => sum + (cpuSeconds(pid) || 0), 0);
  }
  return Number.NaN;
}

/** Cores Postgres used while `f` ran. */
async function postgresCores(port: number, f: () => Promise<void>): Promise<number> {
  const c0 = postgresCpuSeconds(port);
  const t0 = performance.now();
  await f();
  return (postgresCpuSeconds(port) - c0) / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const r2 = (v: number) => Math.round(v * 100) / 100;

export async function runFleetSuite(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return;
  }
  const flags = parseFlags(argv);
  const loadBefore = loadavg().map(r2);
  const dir = tempDir('fieldbeam-bench-fleet-');
  const [nats, postgres] = await Promise.all([startBenchNats(), startPostgres()]);
  const conns: NatsConnection[] = [];
  let load: ReturnType<typeof heartbeatLoad> | undefined;
  let collector: Awaited<ReturnType<typeof startCollectorProcess>> | undefined;
  try {
    collector = await startCollectorProcess({
      name: 'bench-fleet',
      natsUrl: nats.url,
      databaseUrl: postgres.url,
      dataDir: join(dir.path, 'collector'),
    });
    const pid = collector.process?.pid as number;
    const env = {
      ...process.env,
      NATS_URL: nats.url,
      DATABASE_URL: postgres.url,
      FB_DATA_DIR: join(dir.path, 'cli'),
    };
    const rss = new RssSampler(pid, 500);

    // Idle: the collector with no edges (its own timers, consumers' pulls).
    const window = flags.seconds * 1000;
    process.stdout.write(`collector idle for ${flags.seconds} s...\n`);
    await sleep(2000);
    const idleCpu = new CpuMeter({ collector: pid, nats: nats.pid }).start();
    const pgIdle = await postgresCores(postgres.port, () => sleep(window));
    const idle = idleCpu.stop();
    const rssIdle = rss.last;

    for (let c = 0; c < flags.connections; c++)
      conns.push(await connect({ servers: nats.url, name: `bench-fleet-${c}` }));
    process.stdout.write(
      `${flags.edges} simulated edges, a heartbeat each every ${flags.intervalMs} ms (${flags.sensors} sensors each), over ${flags.connections} connections...\n`,
    );
    load = heartbeatLoad(conns, flags);
    // Every edge once in the registry before measuring.
    let online = 0;
    await waitFor(
      'every simulated edge in the registry',
      async () => {
        const r = await run(['edge', 'list', '--json'], env);
        if (r.code !== 0) throw new Error(`edge list failed: ${r.stderr}`);
        online = (JSON.parse(r.stdout) as { online: boolean }[]).filter((e) => e.online).length;
        return online >= flags.edges ? true : undefined;
      },
      flags.intervalMs * 3 + 60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message} (${online} of ${flags.edges} online)`);
    });
    const rssFrom = performance.now();
    const sent0 = load.sent();
    const busyCpu = new CpuMeter({ collector: pid, nats: nats.pid }).start();
    const pgBusy = await postgresCores(postgres.port, () => sleep(window));
    const busy = busyCpu.stop();
    const sent = load.sent() - sent0;
    const rssLoaded = rss.max(rssFrom);
    const rssEnd = rss.last;
    // Heap against RSS: what the registry keeps, or memory V8 has not given back yet.
    const heap = await collector.metrics();

    // edge list with the fleet heartbeating (as an operator runs it).
    const listJson: number[] = [];
    const listTable: number[] = [];
    let listed = 0;
    for (let i = 0; i < flags.listRuns; i++) {
      const j = await run(['edge', 'list', '--json'], env);
      listJson.push(j.ms);
      listed = (JSON.parse(j.stdout) as unknown[]).length;
      listTable.push((await run(['edge', 'list'], env)).ms);
    }
    // The registry's part of it, in this process: the query and the table, without Node's start.
    const pool = new pg.Pool({ connectionString: postgres.url, max: 1 });
    const inProcess: number[] = [];
    try {
      for (let i = 0; i < flags.listRuns; i++) {
        const t0 = performance.now();
        formatFleetTable(fleetEntries(await new FleetStore(pool).list(), [], Date.now()));
        inProcess.push(performance.now() - t0);
      }
    } finally {
      await pool.end();
    }
    const versionRuns: number[] = [];
    for (let i = 0; i < 3; i++) versionRuns.push((await run(['--version'], env)).ms);
    await load.stop();
    load = undefined;
    rss.stop();

    process.stdout.write(`sensors add --all to ${flags.applyEdges} edges polling the bucket...\n`);
    // Not the simulated fleet's ids: their heartbeats left a config revision in the registry (3)
    // that a fresh bucket's first revision does not exceed, so those rows showed it at once.
    const applyEdges = Array.from(
      { length: flags.applyEdges },
      (_, i) => `apply-${String(i).padStart(5, '0')}`,
    );
    const apply = await centralApplyMs(
      conns[0] as NatsConnection,
      applyEdges,
      env,
      postgres.url,
      join(dir.path, 'central'),
      flags.intervalMs,
    );

    const metrics = await collector.metrics();
    const recorded = metrics?.get('fb_cloud_fleet_heartbeats_total') ?? Number.NaN;
    const registryCore = (busy.collector ?? 0) - (idle.collector ?? 0);
    const out = {
      suite: 'fleet',
      measuredAt: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        memGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        loadavgBefore: loadBefore,
        loadavgAfter: loadavg().map(r2),
      },
      flags,
      heartbeats_per_s: r2(sent / flags.seconds),
      heartbeats_recorded_total: recorded,
      collector_cpu_idle_cores: r2(idle.collector ?? 0),
      collector_cpu_fleet_cores: r2(busy.collector ?? 0),
      registry_cpu_cores: r2(registryCore),
      nats_cpu_fleet_cores: r2(busy.nats ?? 0),
      postgres_cpu_idle_cores: r2(pgIdle),
      postgres_cpu_fleet_cores: r2(pgBusy),
      other_cpu_cores_during: r2(busy.other ?? 0),
      collector_rss_idle_mb: Math.round(rssIdle),
      collector_rss_fleet_max_mb: Math.round(rssLoaded),
      collector_rss_fleet_end_mb: Math.round(rssEnd),
      collector_heap_used_mb: Math.round((heap?.get('nodejs_heap_size_used_bytes') ?? Number.NaN) / 2 ** 20),
      collector_heap_total_mb: Math.round(
        (heap?.get('nodejs_heap_size_total_bytes') ?? Number.NaN) / 2 ** 20,
      ),
      collector_external_mb: Math.round((heap?.get('nodejs_external_memory_bytes') ?? Number.NaN) / 2 ** 20),
      edge_list_json_ms_median: Math.round(median(listJson)),
      edge_list_json_ms_max: Math.round(Math.max(...listJson)),
      edge_list_table_ms_median: Math.round(median(listTable)),
      edge_list_query_and_table_in_process_ms_median: r2(median(inProcess)),
      cli_version_ms_median: Math.round(median(versionRuns)),
      edges_listed: listed,
      sensors_add_all_edges: flags.applyEdges,
      sensors_add_all_to_last_edge_reporting_ms: Math.round(apply.totalMs),
      sensors_add_all_cli_ms: Math.round(apply.cliMs),
      targets: { edge_list_ms: 300, registry_cpu_cores: 0.05 },
      pass: { edge_list_ms: median(listJson) < 300, registry_cpu_cores: registryCore < 0.05 },
    };
    mkdirSync(results, { recursive: true });
    writeFileSync(join(results, 'fleet.json'), `${JSON.stringify(out, null, 2)}\n`);
    process.stdout.write(
      `\n${formatTable([
        ['figure', 'measured', 'target'],
        ['heartbeats/s', String(out.heartbeats_per_s), '-'],
        ['collector CPU idle (cores)', String(out.collector_cpu_idle_cores), '-'],
        ['collector CPU with the fleet (cores)', String(out.collector_cpu_fleet_cores), '-'],
        ['registry cost (cores, difference)', String(out.registry_cpu_cores), '< 0.05'],
        ['nats-server CPU with the fleet (cores)', String(out.nats_cpu_fleet_cores), '-'],
        [
          'Postgres CPU idle / with the fleet (cores)',
          `${out.postgres_cpu_idle_cores} / ${out.postgres_cpu_fleet_cores}`,
          '-',
        ],
        [
          'collector RSS idle / with fleet, max and end (MB)',
          `${out.collector_rss_idle_mb} / ${out.collector_rss_fleet_max_mb}, ${out.collector_rss_fleet_end_mb}`,
          '-',
        ],
        [
          'collector heap used / total, external (MB)',
          `${out.collector_heap_used_mb} / ${out.collector_heap_total_mb}, ${out.collector_external_mb}`,
          '-',
        ],
        [`edge list --json, ${listed} edges (ms, median)`, String(out.edge_list_json_ms_median), '< 300'],
        ['edge list table (ms, median)', String(out.edge_list_table_ms_median), '-'],
        [
          '  of which query + table, in process (ms)',
          String(out.edge_list_query_and_table_in_process_ms_median),
          '-',
        ],
        ['fieldbeam-cloud --version (ms, median)', String(out.cli_version_ms_median), '-'],
        [
          `sensors add --all -> last of ${flags.applyEdges} edges reporting it (ms)`,
          `${out.sensors_add_all_to_last_edge_reporting_ms} (CLI ${out.sensors_add_all_cli_ms})`,
          '-',
        ],
      ])}\nwritten to bench/results/fleet.json\n`,
    );
  } finally {
    await load?.stop();
    await Promise.all(conns.map((c) => c.close()));
    await collector?.stop();
    await Promise.all([nats.close(), postgres.close()]);
    dir.remove();
  }
}
