import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ObservationBatch, observationId, subjects } from '@fieldbeam/protocol';
import {
  launchChromium,
  startCollectorProcess,
  startPostgres,
  tempDir,
  waitFor,
} from '@fieldbeam/test/harness';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { type FleetFlags, heartbeatLoad } from './fleet.js';
import { CpuMeter, RssSampler } from './lib/proc.js';
import { startBenchNats } from './lib/servers.js';
import { sleep } from './lib/stats.js';
import { formatTable } from './lib/table.js';

const results = join(dirname(fileURLToPath(import.meta.url)), '../results');

interface ConsoleFlags {
  edges: number;
  sensors: number;
  intervalMs: number;
  seconds: number;
  clients: number;
  browsers: number;
  renders: number;
}

const HELP = `pnpm bench console [--edges 1000] [--sensors 10] [--interval-ms 5000] [--seconds 60] [--clients 20] [--browsers 1] [--renders 5]
  The operator console with a simulated fleet: --edges edges heartbeating every --interval-ms with
  --sensors sensors each (1,000 x 10 = 10,000 sensors), one reading with a position per edge (the map).
  Measures the fleet page's time to first render in Chromium (Debian's chromium; a fresh browser
  context each run, median of --renders), then the collector's CPU and RSS over --seconds with the
  fleet and no console client, and with --clients live clients (--browsers of them Chromium pages on
  the fleet page, the rest plain server-sent-event readers of /console/events).
`;

function parseFlags(argv: string[]): ConsoleFlags {
  const flags: ConsoleFlags = {
    edges: 1000,
    sensors: 10,
    intervalMs: 5000,
    seconds: 60,
    clients: 20,
    browsers: 1,
    renders: 5,
  };
  const bounds: Record<keyof ConsoleFlags, [number, number]> = {
    edges: [1, 20_000],
    sensors: [0, 200],
    intervalMs: [500, 60_000],
    seconds: [5, 600],
    clients: [1, 200],
    browsers: [0, 20],
    renders: [1, 50],
  };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]
      ?.replace(/^--/, '')
      .replace(/-(\w)/g, (_, c: string) => c.toUpperCase()) as keyof ConsoleFlags;
    if (!(name in flags)) continue;
    const v = Number(argv[++i]);
    const [min, max] = bounds[name];
    if (!Number.isInteger(v) || v < min || v > max)
      throw new Error(`--${argv[i - 1]}: a whole number from ${min} to ${max}`);
    flags[name] = v;
  }
  if (flags.browsers > flags.clients) throw new Error('--browsers: at most --clients');
  return flags;
}

const edgeId = (i: number) => `sim-${String(i).padStart(5, '0')}`;

/** One reading with a position per edge, spread over Europe, so the fleet page draws its map. */
async function placeEdges(nc: NatsConnection, edges: number): Promise<void> {
  const js = jetstream(nc);
  const now = new Date().toISOString();
  const enc = new TextEncoder();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < edges; i++) {
    const edge = edgeId(i);
    const station = `${edge}-st-0`;
    const value = 20 + (i % 10);
    const batch: ObservationBatch = {
      v: 1,
      edge,
      seq: [1, 1],
      sent: now,
      observations: [
        {
          id: observationId({ source: 'mqtt', station, variable: 'air_temperature', time: now, value }),
          source: 'mqtt',
          edge,
          station,
          variable: 'air_temperature',
          value,
          unit: 'degC',
          time: now,
          received: now,
          lat: 40 + ((i * 7) % 200) / 10,
          lon: -5 + ((i * 13) % 300) / 10,
        },
      ],
    };
    pending.push(
      js.publish(subjects.obs(edge), enc.encode(JSON.stringify(batch)), { msgID: `${edge}:bench:1` }),
    );
    if (pending.length >= 256) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

/** A live client that only reads: /console/events, counting the bytes it receives. */
function sseReader(url: string): { bytes(): number; close(): void; opened: Promise<void> } {
  const abort = new AbortController();
  let bytes = 0;
  const opened = fetch(url, { signal: abort.signal, headers: { Accept: 'text/event-stream' } }).then(
    async (res) => {
      if (res.status !== 200 || !res.body) throw new Error(`/console/events answered ${res.status}`);
      const reader = res.body.getReader();
      void (async () => {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) return;
            bytes += value.byteLength;
          }
        } catch {
          // Aborted at the end of the run.
        }
      })();
    },
  );
  return { bytes: () => bytes, close: () => abort.abort(), opened };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const r2 = (v: number) => Math.round(v * 100) / 100;
const r3 = (v: number) => Math.round(v * 1000) / 1000;

export async function runConsoleSuite(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(HELP);
    return;
  }
  const flags = parseFlags(argv);
  const loadBefore = loadavg().map(r2);
  const dir = tempDir('fieldbeam-bench-console-');
  const [nats, postgres] = await Promise.all([startBenchNats(), startPostgres()]);
  const conns: NatsConnection[] = [];
  let load: ReturnType<typeof heartbeatLoad> | undefined;
  let collector: Awaited<ReturnType<typeof startCollectorProcess>> | undefined;
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  const readers: ReturnType<typeof sseReader>[] = [];
  try {
    collector = await startCollectorProcess({
      name: 'bench-console',
      natsUrl: nats.url,
      databaseUrl: postgres.url,
      dataDir: join(dir.path, 'collector'),
      env: { FB_CONSOLE_MAX_CLIENTS: String(Math.max(50, flags.clients + flags.renders + 5)) },
    });
    const base = `http://127.0.0.1:${collector.httpPort}`;
    const pid = collector.process?.pid as number;
    const rss = new RssSampler(pid, 500);

    for (let c = 0; c < 4; c++) conns.push(await connect({ servers: nats.url, name: `bench-console-${c}` }));
    await placeEdges(conns[0] as NatsConnection, flags.edges);
    const fleetFlags: FleetFlags = {
      edges: flags.edges,
      intervalMs: flags.intervalMs,
      seconds: flags.seconds,
      connections: conns.length,
      sensors: flags.sensors,
      listRuns: 1,
      applyEdges: 0,
    };
    process.stdout.write(
      `${flags.edges} simulated edges, ${flags.sensors} sensors each, a heartbeat every ${flags.intervalMs} ms...\n`,
    );
    load = heartbeatLoad(conns, fleetFlags);
    let online = 0;
    let placed = 0;
    await waitFor(
      'every simulated edge online, with its position, in /console/api/fleet',
      async () => {
        const res = await fetch(`${base}/console/api/fleet`);
        const body = (await res.json()) as { online: number; edges: { lat: number | null }[] };
        online = body.online;
        placed = body.edges.filter((e) => e.lat !== null).length;
        return online >= flags.edges && placed >= flags.edges ? true : undefined;
      },
      flags.intervalMs * 3 + 120_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message} (${online} online, ${placed} placed of ${flags.edges})`);
    });

    // Time to first render: a fresh context (empty cache) opens the fleet page; done when the table
    // holds its rows and the summary counts the whole fleet.
    browser = await launchChromium();
    const renders: number[] = [];
    const apiMs: number[] = [];
    for (let i = 0; i < flags.renders; i++) {
      const t0 = performance.now();
      await fetch(`${base}/console/api/fleet`).then((r) => r.arrayBuffer());
      apiMs.push(performance.now() - t0);
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const t1 = performance.now();
      await page.goto(`${base}/console/fleet`);
      await page.getByText(`${flags.edges} edges, `).waitFor({ timeout: 60_000 });
      // The page draws its first 200 rows (the rest on request).
      await page
        .locator('tbody tr')
        .nth(Math.min(flags.edges, 200) - 1)
        .waitFor({ timeout: 60_000 });
      await page.locator('section.map canvas').first().waitFor({ timeout: 60_000 });
      renders.push(performance.now() - t1);
      await context.close();
    }
    const fleetBytes = (await (await fetch(`${base}/console/api/fleet`)).arrayBuffer()).byteLength;

    // The collector with the fleet and no console client, then with the live clients.
    process.stdout.write(`collector with the fleet, no console client, for ${flags.seconds} s...\n`);
    const window = flags.seconds * 1000;
    const quietCpu = new CpuMeter({ collector: pid, nats: nats.pid }).start();
    const quietFrom = performance.now();
    await sleep(window);
    const quiet = quietCpu.stop();
    const rssQuiet = rss.max(quietFrom);

    const pages: { close(): Promise<void> }[] = [];
    for (let i = 0; i < flags.browsers; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${base}/console/fleet`);
      await page.locator('.live.on').waitFor({ timeout: 60_000 });
      pages.push(context);
    }
    for (let i = flags.browsers; i < flags.clients; i++) {
      const r = sseReader(`${base}/console/events`);
      readers.push(r);
      await r.opened;
    }
    process.stdout.write(
      `... and with ${flags.clients} live clients (${flags.browsers} Chromium pages, ${flags.clients - flags.browsers} event readers) for ${flags.seconds} s...\n`,
    );
    await sleep(2000);
    const bytes0 = readers.reduce((s, r) => s + r.bytes(), 0);
    const liveCpu = new CpuMeter({ collector: pid, nats: nats.pid }).start();
    const liveFrom = performance.now();
    await sleep(window);
    const live = liveCpu.stop();
    const rssLive = rss.max(liveFrom);
    const readerBytesPerS =
      readers.length > 0
        ? (readers.reduce((s, r) => s + r.bytes(), 0) - bytes0) / readers.length / flags.seconds
        : Number.NaN;
    for (const r of readers.splice(0)) r.close();
    await Promise.all(pages.map((p) => p.close()));
    const metrics = await collector.metrics();
    rss.stop();

    const consoleCost = (live.collector ?? 0) - (quiet.collector ?? 0);
    const out = {
      suite: 'console',
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
      sensors_total: flags.edges * flags.sensors,
      fleet_api_bytes: fleetBytes,
      fleet_api_ms_median: Math.round(median(apiMs)),
      fleet_page_first_render_ms_median: Math.round(median(renders)),
      fleet_page_first_render_ms_max: Math.round(Math.max(...renders)),
      collector_cpu_fleet_cores: r3(quiet.collector ?? 0),
      collector_cpu_fleet_and_clients_cores: r3(live.collector ?? 0),
      console_clients_cpu_cores: r3(consoleCost),
      nats_cpu_cores: r3(live.nats ?? 0),
      other_cpu_cores_during: r2(live.other ?? 0),
      collector_rss_fleet_max_mb: Math.round(rssQuiet),
      collector_rss_fleet_and_clients_max_mb: Math.round(rssLive),
      event_bytes_per_client_per_s: Math.round(readerBytesPerS),
      console_clients_dropped: metrics?.get('fb_cloud_console_clients_dropped_total') ?? null,
      targets: { fleet_page_first_render_ms: 1000, console_clients_cpu_cores: 0.05 },
      pass: {
        fleet_page_first_render_ms: median(renders) < 1000,
        console_clients_cpu_cores: consoleCost < 0.05,
      },
    };
    mkdirSync(results, { recursive: true });
    writeFileSync(join(results, 'console.json'), `${JSON.stringify(out, null, 2)}\n`);
    process.stdout.write(
      `\n${formatTable([
        ['figure', 'measured', 'target'],
        [`edges / sensors`, `${flags.edges} / ${out.sensors_total}`, '-'],
        [
          `fleet page first render, Chromium (ms, median of ${flags.renders}; max)`,
          `${out.fleet_page_first_render_ms_median}; ${out.fleet_page_first_render_ms_max}`,
          '< 1000',
        ],
        ['/console/api/fleet (ms, median; bytes)', `${out.fleet_api_ms_median}; ${out.fleet_api_bytes}`, '-'],
        ['collector CPU, fleet only (cores)', String(out.collector_cpu_fleet_cores), '-'],
        [
          `collector CPU, fleet + ${flags.clients} live clients (cores)`,
          String(out.collector_cpu_fleet_and_clients_cores),
          '-',
        ],
        ['live clients cost (cores, difference)', String(out.console_clients_cpu_cores), '< 0.05'],
        [
          'collector RSS max, fleet only / with clients (MB)',
          `${out.collector_rss_fleet_max_mb} / ${out.collector_rss_fleet_and_clients_max_mb}`,
          '-',
        ],
        ['events per client (bytes/s)', String(out.event_bytes_per_client_per_s), '-'],
        ['other CPU on the machine meanwhile (cores)', String(out.other_cpu_cores_during), '-'],
      ])}\nwritten to bench/results/console.json\n`,
    );
  } finally {
    for (const r of readers) r.close();
    await browser?.close();
    await load?.stop();
    await Promise.all(conns.map((c) => c.close()));
    await collector?.stop();
    await Promise.all([nats.close(), postgres.close()]);
    dir.remove();
  }
}
