/**
 * `pnpm bench edge`: the edge agent against the targets of issue 3, with its peers on the same load.
 *
 * Every phase starts its own servers on 127.0.0.1 (nats-server, the agent as its own process via its
 * CLI, publishers and the aedes peer as child processes) and stops them by their own handle at the
 * end. Load is bounded by count and time. Results: bench/results/edge.json (full run),
 * edge.quick.json (`--quick`), edge.profile.json (`--profile`, agent under `--cpu-prof`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureStreams } from '@fieldbeam/cloud';
import { streams } from '@fieldbeam/protocol';
import { freePort, tempDir } from '@fieldbeam/test/harness';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { AckObserver } from './edge-ack-observer.js';
import { floodRows, runFloods, unitLimits } from './edge-floods.js';
import { type ChildMessage, type NodeChild, startNodeChild } from './lib/child.js';
import { formatProfileSummary, type ProfileSummary, summarizeCpuProfile } from './lib/cpuprofile.js';
import { GcTrace, type IsolateGc } from './lib/gc-trace.js';
import { CpuMeter, ioCounters, machineBusySeconds, RssSampler } from './lib/proc.js';
import { type BenchAgent, type BenchNats, startBenchAgent, startBenchNats } from './lib/servers.js';
import { smapsBreakdown } from './lib/smaps.js';
import { fmt, monoMs, round, type Summary, sleep, summarize } from './lib/stats.js';
import { formatTable } from './lib/table.js';

const here = dirname(fileURLToPath(import.meta.url));
const resultsDir = resolve(here, '../results');
const publisherScript = join(here, 'edge-load-publisher.js');
const aedesScript = join(here, 'edge-peer-aedes.js');
const prefillScript = join(here, 'edge-prefill.js');

const EDGE = 'bench-edge';
const GiB = 1024 ** 3;

/** What the agent runs with: defaults of edge/README.md except a buffer large enough for the drain. */
function agentConfig(natsUrl: string, override: Record<string, unknown>): Record<string, unknown> {
  return merge(
    {
      edge: EDGE,
      nats: { servers: [natsUrl] },
      mqtt: { mode: 'embedded' },
      buffer: { synchronous: 'FULL', capacity_bytes: 4 * GiB, policy: 'block' },
      sensors: [
        {
          topic: 'bench/+station/env',
          decoder: { type: 'json', fields: { seq: { variable: 'bench_sequence', unit: '1' } } },
        },
      ],
    },
    override,
  );
}

/** Deep merge of plain objects (for `--agent-json`); arrays and values replace. */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

const targets = {
  ingest_msgs_per_s: { target: 50_000, better: 'higher' },
  latency_p99_ms_at_1k: { target: 5, better: 'lower' },
  drain_obs_per_s: { target: 300_000, better: 'higher' },
  rss_mb_at_10k: { target: 100, better: 'lower' },
  rss_mb_max_during_drain: { target: 100, better: 'lower' },
  bytes_written_per_reading: { target: undefined, better: 'lower' },
} as const;

interface Options {
  quick: boolean;
  profile: boolean;
  only: Set<string> | undefined;
  ingestS: number;
  /** Merged into the agent's config, for experiments (`--agent-json '{"buffer":{"commit_window_ms":0}}'`). */
  agentOverride: Record<string, unknown>;
  /** Extra node flags for the agent (`--agent-node-args "--max-semi-space-size=4"`). */
  agentNodeArgs: string[];
  /** The latency phase's agent under `--trace-gc`, its pauses counted per isolate (`--gc-trace`). */
  gcTrace: boolean;
  warmupS: number;
  latencyS: number;
  rssS: number;
  peerS: number;
  drainReadings: number;
  publishers: number;
  window: number;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      only: { type: 'string' },
      'drain-readings': { type: 'string' },
      'ingest-s': { type: 'string' },
      'agent-json': { type: 'string' },
      'agent-node-args': { type: 'string' },
      'gc-trace': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`pnpm bench edge [--quick] [--profile] [--only=PHASES] [--drain-readings=N] [--ingest-s=S]
                [--agent-json=JSON] [--agent-node-args="FLAGS"] [--gc-trace]

Phases: ingest, latency, rss10k, rss10k-unit, peer-one-thread, peer-nats, peer-aedes, drain, floods (default: all,
about 8 minutes).
rss10k-unit: the rss10k load with the heap flags of the agent's systemd unit (the memory it ships with)
peer-one-thread: the ingest phase with the agent on one thread (forward.thread: false), a peer in the same run
floods: hostile MQTT clients (pre-login CONNECT and idle-socket floods, oversized publish, retained, unique-topic,
        reject and client-id floods) against the agent with its systemd unit's heap flags; peak RSS
        per flood next to the unit's MemoryMax
--quick            short smoke run (~1 min)
--profile          run the agent under node --cpu-prof in every agent phase and print its hot spots;
                   profiles and summaries go to bench/results/edge-profiles/
--agent-json       merged into the agent's config, e.g. '{"buffer":{"commit_window_ms":0}}'
--agent-node-args  extra node flags for the agent, e.g. "--max-semi-space-size=2 --max-old-space-size=64"
--gc-trace         run the latency phase's agent with node --trace-gc and count its GC pauses per isolate
                   (main thread, buffer thread) in the measured window: count, > 2 ms, > 5 ms, longest,
                   per second (details.latency_1k.gc); off by default, as tracing adds its own output
Every RSS phase (latency, rss10k, rss10k-unit, drain) ends with the agent's /proc/<pid>/smaps grouped into
the node binary, other files (shared libraries, better-sqlite3), anonymous memory and the rest, next to the
V8 heaps of the main and the buffer thread (details.<phase>.memory_breakdown_mb).
Results: bench/results/edge.json for a full standard run, edge.profile.json with --profile, and
edge.quick.json for any other run (quick, partial, or with agent overrides).
`);
    process.exit(0);
  }
  const q = values.quick === true;
  return {
    quick: q,
    profile: values.profile === true,
    only: values.only ? new Set(values.only.split(',').map((s) => s.trim())) : undefined,
    ingestS: Number(values['ingest-s'] ?? (q ? 5 : 30)),
    agentOverride: values['agent-json'] ? (JSON.parse(values['agent-json']) as Record<string, unknown>) : {},
    agentNodeArgs: values['agent-node-args'] ? values['agent-node-args'].split(' ').filter(Boolean) : [],
    gcTrace: values['gc-trace'] === true,
    warmupS: q ? 2 : 3,
    latencyS: q ? 5 : 20,
    rssS: q ? 5 : 15,
    peerS: q ? 5 : 20,
    drainReadings: Number(values['drain-readings'] ?? (q ? 300_000 : 5_000_000)),
    publishers: 2,
    window: 1000,
  };
}

const log = (s: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

/** Closers of whatever is running, newest first; run on error and on Ctrl-C. */
const running: (() => Promise<void>)[] = [];
async function stopAll(): Promise<void> {
  while (running.length > 0) {
    const close = running.pop();
    await close?.().catch((err: Error) => log(`cleanup: ${err.message}`));
  }
}
/** Registers a closer for cleanup; returns a function that runs it once and unregisters it. */
function track(how: () => Promise<void>): () => Promise<void> {
  running.push(how);
  return async () => {
    const i = running.indexOf(how);
    if (i >= 0) running.splice(i, 1);
    await how();
  };
}

async function natsWithStreams(extraConfig = ''): Promise<{ nats: BenchNats; stop: () => Promise<void> }> {
  const nats = await startBenchNats(extraConfig);
  const stop = track(() => nats.close());
  const nc = await connect({ servers: nats.url });
  try {
    await ensureStreams(await jetstreamManager(nc), Object.values(streams));
  } finally {
    await nc.close();
  }
  return { nats, stop };
}

async function agentOn(
  nats: BenchNats,
  dir: string,
  opts: Options,
  phase: string,
): Promise<{ agent: BenchAgent; stop: () => Promise<void> }> {
  // One folder per phase with node's own file names: every thread writes a profile of its own
  // (the buffer thread too), and --cpu-prof-name would give them all one name.
  const nodeArgs = opts.profile
    ? ['--cpu-prof', `--cpu-prof-dir=${join(resultsDir, 'edge-profiles', phase)}`]
    : [...opts.agentNodeArgs, ...(traceGc(opts, phase) ? ['--trace-gc'] : [])];
  const agent = await startBenchAgent(dir, agentConfig(nats.url, opts.agentOverride), {
    nodeArgs,
    waitMs: 180_000,
  });
  const stop = track(() => agent.stop());
  return { agent, stop };
}

interface PublisherSpec {
  id: string;
  rate: number;
  window: number;
  recordTimes?: boolean;
  /** See `PublisherArgs.noDelay`: on in the paced phases, which measure latency. */
  noDelay?: boolean;
}

interface LoadRun<P> {
  /** Seconds of the measured window. */
  windowS: number;
  first: P;
  last: P;
  /** Publisher PUBACKs per second in the window (all publishers). */
  pubAckedPerS: number;
  cpu: Record<string, number>;
  done: ChildMessage[];
}

/**
 * Starts the publishers together, lets them run `warmupS`, then measures `measureS` between two
 * probes, printing a progress line every 5 s; then stops them and collects their reports.
 */
async function runLoad<P extends { t: number }>(opts: {
  label: string;
  url: string;
  publishers: PublisherSpec[];
  warmupS: number;
  measureS: number;
  probe: () => Promise<P>;
  progress: (prev: P, cur: P) => string;
  pids: Record<string, number>;
}): Promise<LoadRun<P>> {
  const totalMs = (opts.warmupS + opts.measureS + 2) * 1000;
  const children: NodeChild[] = [];
  const stopChildren = track(async () => {
    await Promise.all(children.map((c) => c.stop()));
  });
  try {
    for (const p of opts.publishers) {
      const maxMessages =
        p.rate > 0 ? Math.ceil((p.rate * totalMs) / 1000) + 1 : Math.ceil((250_000 * totalMs) / 1000);
      children.push(
        startNodeChild(publisherScript, {
          url: opts.url,
          id: p.id,
          window: p.window,
          rate: p.rate,
          durationMs: totalMs,
          maxMessages,
          recordTimes: p.recordTimes === true,
          noDelay: p.noDelay === true,
        }),
      );
    }
    await Promise.all(children.map((c) => c.next('ready', 20_000)));
    for (const c of children) c.send('go');
    const acked = () => children.reduce((s, c) => s + Number(c.last('progress')?.acked ?? 0), 0);
    await sleep(opts.warmupS * 1000);
    const pids: Record<string, number> = { ...opts.pids };
    children.forEach((c, i) => {
      pids[`publisher${i}`] = c.pid;
    });
    const cpu = new CpuMeter(pids).start();
    const first = await opts.probe();
    const acked0 = acked();
    let prev = first;
    const endAt = performance.now() + opts.measureS * 1000;
    while (performance.now() < endAt) {
      await sleep(Math.min(5000, endAt - performance.now()));
      const cur = await opts.probe();
      log(
        `  ${opts.label} ${((cur.t - first.t) / 1000).toFixed(0)}/${opts.measureS} s: ${opts.progress(prev, cur)}`,
      );
      prev = cur;
    }
    const last = prev;
    const acked1 = acked();
    const cpuUse = cpu.stop();
    for (const c of children) c.send('stop');
    const done = await Promise.all(children.map((c) => c.next('done', 30_000)));
    await Promise.all(children.map((c) => c.exited));
    return {
      windowS: (last.t - first.t) / 1000,
      first,
      last,
      pubAckedPerS: ((acked1 - acked0) * 1000) / (last.t - first.t),
      cpu: cpuUse,
      done,
    };
  } finally {
    await stopChildren();
  }
}

const cores = (cpu: Record<string, number>) =>
  Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, round(v)]));

interface AgentProbe {
  t: number;
  forwarded: number;
  readings: number;
  writeBytes: number;
  wchar: number;
  /** V8 heap used / total and external (Buffers, native) memory, MiB, from the agent's /metrics. */
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  /** The buffer thread's V8 heap used / total, MiB (its latest report). */
  threadHeapUsedMb: number;
  threadHeapTotalMb: number;
}

async function probeAgent(agent: BenchAgent): Promise<AgentProbe> {
  const m = await agent.metrics().catch((err: Error) => {
    const exit = agent.process.child.exitCode ?? agent.process.child.signalCode;
    throw new Error(
      `agent /metrics failed (${err.message}; agent ${exit === null ? 'running' : `exited: ${exit}`})\n${agent.process.output().slice(-3000)}`,
    );
  });
  const io = ioCounters(agent.pid);
  return {
    t: monoMs(),
    forwarded: m.get('fb_edge_forwarded_total') ?? 0,
    readings: m.get('fb_edge_readings_total') ?? 0,
    writeBytes: io.writeBytes,
    wchar: io.wchar,
    heapUsedMb: (m.get('nodejs_heap_size_used_bytes') ?? Number.NaN) / 1024 ** 2,
    heapTotalMb: (m.get('nodejs_heap_size_total_bytes') ?? Number.NaN) / 1024 ** 2,
    externalMb: (m.get('nodejs_external_memory_bytes') ?? Number.NaN) / 1024 ** 2,
    threadHeapUsedMb: (m.get('fb_edge_buffer_thread_heap_used_bytes') ?? Number.NaN) / 1024 ** 2,
    threadHeapTotalMb: (m.get('fb_edge_buffer_thread_heap_total_bytes') ?? Number.NaN) / 1024 ** 2,
  };
}

/** Only the latency phase is traced: its tail is the target the pauses may explain. */
const traceGc = (opts: Options, phase: string) => opts.gcTrace && phase === 'latency';

/**
 * Where the agent's RSS sits now (smaps), next to the V8 heaps from its /metrics: the main thread's
 * (prom-client's defaults) and the buffer thread's (its own gauges). Both heaps are in `anonymous_mb`.
 */
function memoryBreakdown(pid: number, p: AgentProbe) {
  const smaps = smapsBreakdown(pid);
  return smaps
    ? {
        ...smaps,
        main_heap_used_mb: round(p.heapUsedMb),
        main_heap_total_mb: round(p.heapTotalMb),
        main_external_mb: round(p.externalMb),
        buffer_thread_heap_used_mb: round(p.threadHeapUsedMb),
        buffer_thread_heap_total_mb: round(p.threadHeapTotalMb),
      }
    : undefined;
}

const heap = (p: AgentProbe) => ({
  heap_used_mb: round(p.heapUsedMb),
  heap_total_mb: round(p.heapTotalMb),
  external_mb: round(p.externalMb),
});

const perS = (a: number, b: number, ta: number, tb: number) => ((b - a) * 1000) / (tb - ta);

// ---------------------------------------------------------------------------------------------------
// Phases

async function phaseIngest(opts: Options, profiles: ProfileSummary[], phase = 'ingest') {
  log(
    `${phase}: ${opts.publishers} mqtt.js QoS 1 publishers x window ${opts.window} -> agent -> JetStream, ${opts.ingestS} s`,
  );
  const dir = tempDir('fieldbeam-bench-edge-');
  const removeDir = track(async () => dir.remove());
  const { nats, stop: stopNats } = await natsWithStreams();
  const { agent, stop: stopAgent } = await agentOn(nats, dir.path, opts, phase);
  const rss = new RssSampler(agent.pid);
  try {
    const run = await runLoad<AgentProbe>({
      label: phase,
      url: `mqtt://127.0.0.1:${agent.mqttPort}`,
      publishers: Array.from({ length: opts.publishers }, (_, i) => ({
        id: `p${i}`,
        rate: 0,
        window: opts.window,
      })),
      warmupS: opts.warmupS,
      measureS: opts.ingestS,
      probe: () => probeAgent(agent),
      progress: (a, b) =>
        `JetStream-acked ${fmt(perS(a.forwarded, b.forwarded, a.t, b.t))}/s, buffered ${fmt(perS(a.readings, b.readings, a.t, b.t))}/s, depth ${fmt(b.readings - b.forwarded)}, rss ${fmt(rss.last)} MB`,
      pids: { agent: agent.pid, nats: nats.pid },
    });
    const { first: a, last: b } = run;
    const readings = b.readings - a.readings;
    const result = {
      method:
        'forwarded = fb_edge_forwarded_total (observations JetStream acknowledged) from /metrics at the start and end of the window, after a warm-up; one reading per MQTT message',
      window_s: round(run.windowS),
      jetstream_acked_per_s: round(perS(a.forwarded, b.forwarded, a.t, b.t)),
      buffered_per_s: round(perS(a.readings, b.readings, a.t, b.t)),
      mqtt_puback_per_s: round(run.pubAckedPerS),
      backlog_at_end: b.readings - b.forwarded,
      write_bytes_per_reading: round((b.writeBytes - a.writeBytes) / readings),
      wchar_per_reading: round((b.wchar - a.wchar) / readings),
      agent_cpu_us_per_reading: round(
        ((run.cpu.agent ?? Number.NaN) * 1e6) / perS(a.readings, b.readings, a.t, b.t),
      ),
      rss_mb_max: round(rss.max()),
      memory_at_end: heap(b),
      publish_to_puback_ms: pickLatency((run.done[0]?.puback ?? {}) as Summary),
      cpu_cores: cores(run.cpu),
    };
    return result;
  } finally {
    rss.stop();
    await stopAgent();
    await stopNats();
    await removeDir();
    await collectProfile(opts, phase, profiles);
  }
}

/** The same agent on one thread (`forward.thread: false`), as a peer of the threaded one in the same run. */
function oneThread(opts: Options): Options {
  return { ...opts, agentOverride: merge(opts.agentOverride, { forward: { thread: false } }) };
}

/** The agent with the heap flags of its systemd unit (`NODE_OPTIONS`), for the memory it ships with. */
function unitFlags(opts: Options): Options {
  return opts.profile ? opts : { ...opts, agentNodeArgs: [...unitLimits().nodeArgs, ...opts.agentNodeArgs] };
}

function pickLatency(s: Partial<Summary>) {
  return {
    n: s.n ?? 0,
    p50: round(s.p50 ?? Number.NaN),
    p90: round(s.p90 ?? Number.NaN),
    p99: round(s.p99 ?? Number.NaN),
    max: round(s.max ?? Number.NaN),
  };
}

/** Paced load with every publish time recorded and matched to the PubAck seen by an observer. */
async function phasePaced(
  opts: Options,
  profiles: ProfileSummary[],
  label: string,
  totalRate: number,
  seconds: number,
  pubs: number,
) {
  const dir = tempDir('fieldbeam-bench-edge-');
  const removeDir = track(async () => dir.remove());
  const { nats, stop: stopNats } = await natsWithStreams();
  const { agent, stop: stopAgent } = await agentOn(nats, dir.path, opts, label);
  const observer = await AckObserver.start(nats.url, EDGE);
  const stopObserver = track(() => observer.close());
  const rss = new RssSampler(agent.pid);
  const gc = traceGc(opts, label) ? new GcTrace(agent.process.child.stdout) : undefined;
  try {
    const warmupS = 1;
    const run = await runLoad<AgentProbe>({
      label,
      url: `mqtt://127.0.0.1:${agent.mqttPort}`,
      publishers: Array.from({ length: pubs }, (_, i) => ({
        id: `p${i}`,
        rate: totalRate / pubs,
        window: opts.window,
        recordTimes: true,
        noDelay: true,
      })),
      warmupS,
      measureS: seconds,
      probe: () => probeAgent(agent),
      progress: (a, b) =>
        `JetStream-acked ${fmt(perS(a.forwarded, b.forwarded, a.t, b.t))}/s, depth ${fmt(b.readings - b.forwarded)}, rss ${fmt(rss.last)} MB`,
      pids: { agent: agent.pid, nats: nats.pid },
    });
    const windowEnd = performance.now();
    const rssWindowStart = windowEnd - run.windowS * 1000;
    const memory = memoryBreakdown(agent.pid, run.last);
    // Let the last PubAcks arrive.
    await sleep(1000);
    const lat: number[] = [];
    const puback: number[] = [];
    let missing = 0;
    run.done.forEach((d, i) => {
      const sentAt = (d.sentAt ?? []) as number[];
      const from = Number(d.startedAt) + warmupS * 1000;
      sentAt.forEach((t0, seq) => {
        if (t0 < from) return;
        const at = observer.ackedAt.get(`p${i}:${seq}`);
        if (at === undefined) missing++;
        else lat.push(at - t0);
      });
      puback.push(Number((d.puback as Summary).p99));
    });
    const s = summarize(lat);
    return {
      method:
        'publish time taken in the publisher process just before client.publish(), its socket without Nagle (TCP_NODELAY, see edge-load-publisher.ts); PubAck time = when a core NATS subscriber on fb.obs.<edge> and _INBOX.> sees the JetStream PubAck sent to the agent for the batch holding that reading (same host clock); first second excluded',
      offered_per_s: totalRate,
      publishers: pubs,
      window_s: round(run.windowS),
      jetstream_acked_per_s: round(perS(run.first.forwarded, run.last.forwarded, run.first.t, run.last.t)),
      publish_to_pubAck_ms: pickLatency(s),
      samples: s.n,
      not_acked: missing,
      publish_to_mqtt_puback_ms: pickLatency((run.done[0]?.puback ?? {}) as Summary),
      publish_to_mqtt_puback_p99_per_publisher: puback.map(round),
      observer_batches: observer.batches,
      rss_mb_max: round(rss.max(rssWindowStart)),
      rss_mb_end: round(rss.last),
      rss_mb_idle_before_load: round(rss.samples[0]?.mb ?? Number.NaN),
      memory_at_end: heap(run.last),
      memory_breakdown_mb: memory,
      ...(gc
        ? {
            gc: {
              method:
                "agent under node --trace-gc; its lines on stdout stamped on arrival, those of the measured window counted per isolate; pause = the collection's own pause (incremental marking steps of a Mark-Compact are not in it)",
              window_s: round(run.windowS),
              unparsed_lines: gc.unparsed,
              isolates: gc.summary(rssWindowStart, windowEnd),
            },
          }
        : {}),
      write_bytes_per_reading: round(
        (run.last.writeBytes - run.first.writeBytes) / (run.last.readings - run.first.readings),
      ),
      cpu_cores: cores(run.cpu),
    };
  } finally {
    rss.stop();
    await stopObserver();
    await stopAgent();
    await stopNats();
    await removeDir();
    await collectProfile(opts, label, profiles);
  }
}

async function phasePeerNats(opts: Options) {
  log(
    `peer nats-server MQTT: same publishers -> nats-server's MQTT listener -> JetStream stream, ${opts.peerS} s`,
  );
  const mqttPort = await freePort();
  const nats = await startBenchNats(
    `server_name: fieldbeam_bench\nmqtt { host: 127.0.0.1, port: ${mqttPort} }`,
  );
  const stopNats = track(() => nats.close());
  const nc = await connect({ servers: nats.url });
  const stopNc = track(() => nc.close());
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'BENCH_MQTT', subjects: ['bench.>'], storage: StorageType.File });
    const probe = async () => {
      const info = await jsm.streams.info('BENCH_MQTT');
      return { t: monoMs(), stored: info.state.messages };
    };
    const run = await runLoad({
      label: 'peer-nats',
      url: `mqtt://127.0.0.1:${mqttPort}`,
      publishers: Array.from({ length: opts.publishers }, (_, i) => ({
        id: `p${i}`,
        rate: 0,
        window: opts.window,
      })),
      warmupS: opts.warmupS,
      measureS: opts.peerS,
      probe,
      progress: (a, b) => `stored ${fmt(perS(a.stored, b.stored, a.t, b.t))}/s`,
      pids: { nats: nats.pid },
    });
    return {
      method:
        'nats-server 2.9 MQTT listener (QoS 1) into a file-storage stream on bench.>; rate = stream message count over the window (JetStream fsyncs periodically, not per message)',
      window_s: round(run.windowS),
      stored_per_s: round(perS(run.first.stored, run.last.stored, run.first.t, run.last.t)),
      mqtt_puback_per_s: round(run.pubAckedPerS),
      cpu_cores: cores(run.cpu),
    };
  } finally {
    await stopNc();
    await stopNats();
  }
}

async function phasePeerAedes(opts: Options) {
  log(`peer aedes: same publishers -> aedes alone (in-memory, no persistence), ${opts.peerS} s`);
  const port = await freePort();
  const broker = startNodeChild(aedesScript, { port });
  const stopBroker = track(() => broker.stop());
  try {
    await broker.next('ready', 20_000);
    const probe = async () => {
      await sleep(0);
      const c = broker.last('count');
      return { t: Number(c?.t ?? monoMs()), n: Number(c?.n ?? 0) };
    };
    const run = await runLoad({
      label: 'peer-aedes',
      url: `mqtt://127.0.0.1:${port}`,
      publishers: Array.from({ length: opts.publishers }, (_, i) => ({
        id: `p${i}`,
        rate: 0,
        window: opts.window,
      })),
      warmupS: opts.warmupS,
      measureS: opts.peerS,
      probe,
      progress: (a, b) => `publishes ${fmt(perS(a.n, b.n, a.t, b.t))}/s`,
      pids: { aedes: broker.pid },
    });
    // The MQTT hop alone at the latency phase's load: publish -> PUBACK with nothing behind it.
    const paced = await runLoad({
      label: 'peer-aedes @1k',
      url: `mqtt://127.0.0.1:${port}`,
      publishers: [{ id: 'p0', rate: 1000, window: opts.window, recordTimes: true, noDelay: true }],
      warmupS: 1,
      measureS: opts.quick ? 3 : 5,
      probe,
      progress: (a, b) => `publishes ${fmt(perS(a.n, b.n, a.t, b.t))}/s`,
      pids: { aedes: broker.pid },
    });
    return {
      method: "aedes 1.x alone in a child process; rate = its 'publish' events from clients over the window",
      window_s: round(run.windowS),
      publishes_per_s: round(perS(run.first.n, run.last.n, run.first.t, run.last.t)),
      mqtt_puback_per_s: round(run.pubAckedPerS),
      cpu_cores: cores(run.cpu),
      publish_to_puback_ms_at_1k: pickLatency((paced.done[0]?.puback ?? {}) as Summary),
    };
  } finally {
    await stopBroker();
  }
}

async function phaseDrain(opts: Options, profiles: ProfileSummary[]) {
  const n = opts.drainReadings;
  log(
    `drain: prefill ${fmt(n)} readings into the buffer file with SqliteOutbox, then start the agent (${opts.agentNodeArgs.join(' ') || 'no node flags'}) with the uplink up`,
  );
  const dir = tempDir('fieldbeam-bench-edge-');
  const removeDir = track(async () => dir.remove());
  try {
    const path = join(dir.path, 'data', `${EDGE}.buffer.sqlite`);
    const prefill = startNodeChild(prefillScript, { path, count: n, edge: EDGE, stations: 2 });
    const stopPrefill = track(() => prefill.stop());
    let lastLog = 0;
    const ticker = setInterval(() => {
      const p = prefill.last('progress');
      if (p && Number(p.ms) - lastLog >= 5000) {
        lastLog = Number(p.ms);
        log(`  prefill ${fmt(Number(p.done))}/${fmt(n)} (${fmt((Number(p.done) * 1000) / Number(p.ms))}/s)`);
      }
    }, 1000);
    const filled = await prefill.next('done', 600_000).finally(() => clearInterval(ticker));
    await stopPrefill();
    log(
      `  prefilled ${fmt(Number(filled.depth))} readings, ${fmt(Number(filled.fileBytes) / 1024 ** 2)} MiB file, in ${fmt(Number(filled.ms) / 1000, 1)} s`,
    );

    const { nats, stop: stopNats } = await natsWithStreams();
    const spawnedAt = performance.now();
    const { agent, stop: stopAgent } = await agentOn(nats, dir.path, opts, 'drain');
    const rss = new RssSampler(agent.pid, 200);
    // CPU is measured from the first poll that sees the depth fall (agent start-up excluded).
    const cpu = new CpuMeter({ agent: agent.pid, nats: nats.pid });
    let cpuStarted = false;
    const readyAt = performance.now();
    try {
      const timeoutMs = Math.min(300_000, Math.max(60_000, n / 20));
      const samples: { at: number; depth: number }[] = [];
      let lastLog2 = performance.now();
      for (;;) {
        const h = await agent.healthz();
        const at = performance.now();
        samples.push({ at, depth: h.buffer.depth });
        if (!cpuStarted && h.buffer.depth < n) {
          cpu.start();
          cpuStarted = true;
        }
        if (h.buffer.depth === 0 || at - readyAt > timeoutMs) break;
        if (at - lastLog2 >= 5000) {
          lastLog2 = at;
          const firstMoved = samples.find((s) => s.depth < n);
          const rate = firstMoved ? ((firstMoved.depth - h.buffer.depth) * 1000) / (at - firstMoved.at) : 0;
          log(
            `  drain ${fmt(n - h.buffer.depth)}/${fmt(n)} sent, ${fmt(rate)}/s, agent rss ${fmt(rss.last)} MB`,
          );
        }
        await sleep(200);
      }
      const cpuUse = cpuStarted ? cpu.stop() : {};
      rss.stop();
      const firstMoved = samples.find((s) => s.depth < n);
      const end = samples[samples.length - 1] as { at: number; depth: number };
      const complete = end.depth === 0;
      const rate =
        firstMoved && end.at > firstMoved.at
          ? ((firstMoved.depth - end.depth) * 1000) / (end.at - firstMoved.at)
          : 0;
      const memory = memoryBreakdown(agent.pid, await probeAgent(agent));
      const m = await agent.metrics();
      const nc = await connect({ servers: nats.url });
      const info = await (await jetstreamManager(nc)).streams.info(streams.OBS.name);
      await nc.close();
      const rssSamples = rss.samples.map((s) => s.mb);
      const afterStart = rss.samples.filter((s) => firstMoved && s.at >= firstMoved.at).map((s) => s.mb);
      return {
        method:
          'buffer prefilled with the agent SqliteOutbox; agent started with nats reachable; depth polled on /healthz every 200 ms; rate = readings sent between the first poll that saw the depth fall and the poll that saw 0',
        readings: n,
        complete,
        agent_start_to_listening_s: round((readyAt - spawnedAt) / 1000),
        drain_s: round(firstMoved ? (end.at - firstMoved.at) / 1000 : Number.NaN),
        obs_per_s: round(rate),
        obs_per_s_incl_agent_start: round(((n - end.depth) * 1000) / (end.at - spawnedAt)),
        agent_cpu_us_per_reading: round(((cpuUse.agent ?? Number.NaN) * 1e6) / rate),
        forwarded_total: m.get('fb_edge_forwarded_total') ?? 0,
        uplink_errors: m.get('fb_edge_uplink_errors_total') ?? 0,
        stream_messages: info.state.messages,
        stream_bytes: info.state.bytes,
        rss_mb_first: round(afterStart[0] ?? rssSamples[0] ?? Number.NaN),
        rss_mb_max: round(Math.max(...rssSamples)),
        rss_mb_end: round(rssSamples[rssSamples.length - 1] ?? Number.NaN),
        rss_samples: rssSamples.length,
        memory_at_end: {
          heap_used_mb: round((m.get('nodejs_heap_size_used_bytes') ?? Number.NaN) / 1024 ** 2),
          heap_total_mb: round((m.get('nodejs_heap_size_total_bytes') ?? Number.NaN) / 1024 ** 2),
          external_mb: round((m.get('nodejs_external_memory_bytes') ?? Number.NaN) / 1024 ** 2),
        },
        memory_breakdown_mb: memory,
        cpu_cores: cores(cpuUse),
        prefill: {
          s: round(Number(filled.ms) / 1000),
          file_mib: round(Number(filled.fileBytes) / 1024 ** 2),
        },
      };
    } finally {
      rss.stop();
      await stopAgent();
      await stopNats();
    }
  } finally {
    await removeDir();
    await collectProfile(opts, 'drain', profiles);
  }
}

/**
 * The phase's profiles, one per thread (node names them CPU.<date>.<time>.<pid>.<thread id>.<seq>),
 * moved to agent-<phase>.cpuprofile (the main thread) and agent-<phase>.thread<id>.cpuprofile (the
 * buffer thread), each summarised beside it.
 */
async function collectProfile(opts: Options, phase: string, profiles: ProfileSummary[]): Promise<void> {
  if (!opts.profile) return;
  const dir = join(resultsDir, 'edge-profiles');
  const phaseDir = join(dir, phase);
  const files = existsSync(phaseDir) ? readdirSync(phaseDir).filter((f) => f.endsWith('.cpuprofile')) : [];
  if (files.length === 0) log(`  no profile written for ${phase}`);
  for (const f of files) {
    const tid = Number(f.split('.')[4]);
    const name = tid === 0 ? `agent-${phase}` : `agent-${phase}.thread${tid}`;
    renameSync(join(phaseDir, f), join(dir, `${name}.cpuprofile`));
    const s = summarizeCpuProfile(join(dir, `${name}.cpuprofile`), 30);
    profiles.push(s);
    writeFileSync(join(dir, `${name}.summary.txt`), `${formatProfileSummary(s)}\n`);
    log(formatProfileSummary(s));
  }
  rmSync(phaseDir, { recursive: true, force: true });
}

/** Which agent was measured: the commit, and the agent's files that differ from it (edge/dist is built from the working tree). */
function agentBuild(): { commit: string; uncommitted: string[] } {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: resolve(here, '../..'), encoding: 'utf8' }).trim();
  try {
    return {
      commit: git('rev-parse', '--short', 'HEAD'),
      uncommitted: git('status', '--porcelain', '--', 'edge/src', 'protocol/src').split('\n').filter(Boolean),
    };
  } catch {
    return { commit: 'unknown', uncommitted: [] };
  }
}

// ---------------------------------------------------------------------------------------------------

export async function runEdgeSuite(argv: string[]): Promise<void> {
  const opts = options(argv);
  const want = (p: string) => !opts.only || opts.only.has(p);
  const onSignal = () => {
    log('interrupted: stopping everything this run started');
    void stopAll().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const profiles: ProfileSummary[] = [];
  if (opts.profile) {
    rmSync(join(resultsDir, 'edge-profiles'), { recursive: true, force: true });
    mkdirSync(join(resultsDir, 'edge-profiles'), { recursive: true });
  }
  const busy0 = machineBusySeconds();
  await sleep(2000);
  const background = (machineBusySeconds() - busy0) / 2;
  log(
    `other load on this box before the run: ${background.toFixed(2)} cores of ${availableParallelism()}` +
      (background > 0.2 ? ' (BUSY: the figures below will be lower than on a quiet box)' : ''),
  );
  const startedAt = performance.now();
  const details: Record<string, unknown> = {};
  try {
    if (want('ingest')) details.ingest = await phaseIngest(opts, profiles);
    if (want('latency')) {
      log(`latency: 1 publisher paced at 1,000 msg/s for ${opts.latencyS} s, PubAcks observed on NATS`);
      details.latency_1k = await phasePaced(opts, profiles, 'latency', 1000, opts.latencyS, 1);
    }
    if (want('rss10k')) {
      log(`rss10k: ${opts.publishers} publishers paced at 10,000 msg/s in total for ${opts.rssS} s`);
      details.load_10k = await phasePaced(opts, profiles, 'rss10k', 10_000, opts.rssS, opts.publishers);
    }
    if (want('rss10k-unit')) {
      log(
        `rss10k-unit: the rss10k load on the agent with its systemd unit's heap flags (${unitLimits().nodeArgs.join(' ')})`,
      );
      details.load_10k_unit_flags = await phasePaced(
        unitFlags(opts),
        profiles,
        'rss10k-unit',
        10_000,
        opts.rssS,
        opts.publishers,
      );
    }
    if (want('peer-one-thread'))
      details.peer_one_thread = await phaseIngest(oneThread(opts), profiles, 'peer-one-thread');
    if (want('peer-nats')) details.peer_nats_mqtt = await phasePeerNats(opts);
    if (want('peer-aedes')) details.peer_aedes = await phasePeerAedes(opts);
    // With the unit's heap flags: the target is the memory the agent ships with.
    if (want('drain')) details.drain = await phaseDrain(unitFlags(opts), profiles);
    if (want('floods')) details.floods = await runFloods({ quick: opts.quick, log, track, natsWithStreams });
  } finally {
    await stopAll();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  // biome-ignore lint/suspicious/noExplicitAny: the phase results are plain JSON records
  const d = details as Record<string, any>;
  const metrics = {
    ingest_msgs_per_s: d.ingest?.jetstream_acked_per_s ?? null,
    latency_p99_ms_at_1k: d.latency_1k?.publish_to_pubAck_ms?.p99 ?? null,
    drain_obs_per_s: d.drain?.obs_per_s ?? null,
    rss_mb_at_10k: d.load_10k?.rss_mb_max ?? null,
    rss_mb_at_10k_unit_flags: d.load_10k_unit_flags?.rss_mb_max ?? null,
    rss_mb_max_during_drain: d.drain?.rss_mb_max ?? null,
    // At a paced 10,000 readings/s the commits are the same size on every box; at full speed their size
    // (and with it the bytes per reading) follows whatever rate the box reached (details.ingest has it).
    bytes_written_per_reading:
      d.load_10k?.write_bytes_per_reading ?? d.ingest?.write_bytes_per_reading ?? null,
    peer_nats_mqtt_msgs_per_s: d.peer_nats_mqtt?.stored_per_s ?? null,
    peer_aedes_qos1_msgs_per_s: d.peer_aedes?.publishes_per_s ?? null,
    peer_one_thread_msgs_per_s: d.peer_one_thread?.jetstream_acked_per_s ?? null,
    floods_rss_mb_peak: d.floods?.peak_mb ?? null,
  };
  const verdict = (k: keyof typeof targets): string => {
    const v = metrics[k];
    const t = targets[k];
    if (v === null || t.target === undefined) return '';
    return (t.better === 'higher' ? v >= t.target : v <= t.target) ? 'ok' : 'MISS';
  };
  const rows: string[][] = [
    ['metric', 'value', 'target', 'peer', ''],
    [
      'ingest_msgs_per_s',
      fmt(metrics.ingest_msgs_per_s),
      '>= 50,000',
      `nats-mqtt ${fmt(metrics.peer_nats_mqtt_msgs_per_s)} / aedes ${fmt(metrics.peer_aedes_qos1_msgs_per_s)} / one thread ${fmt(metrics.peer_one_thread_msgs_per_s)}`,
      verdict('ingest_msgs_per_s'),
    ],
    [
      'latency_p99_ms_at_1k',
      fmt(metrics.latency_p99_ms_at_1k, 2),
      '<= 5',
      '-',
      verdict('latency_p99_ms_at_1k'),
    ],
    ['drain_obs_per_s', fmt(metrics.drain_obs_per_s), '>= 300,000', '-', verdict('drain_obs_per_s')],
    ['rss_mb_at_10k', fmt(metrics.rss_mb_at_10k, 1), '<= 100', '-', verdict('rss_mb_at_10k')],
    [
      'rss_mb_at_10k_unit_flags',
      fmt(metrics.rss_mb_at_10k_unit_flags, 1),
      '<= 100',
      '-',
      metrics.rss_mb_at_10k_unit_flags === null
        ? ''
        : metrics.rss_mb_at_10k_unit_flags <= 100
          ? 'ok'
          : 'MISS',
    ],
    [
      'rss_mb_max_during_drain',
      fmt(metrics.rss_mb_max_during_drain, 1),
      '<= 100, flat',
      d.drain ? `first ${fmt(d.drain.rss_mb_first, 1)} / end ${fmt(d.drain.rss_mb_end, 1)}` : '-',
      verdict('rss_mb_max_during_drain'),
    ],
    ['bytes_written_per_reading', fmt(metrics.bytes_written_per_reading), '-', '-', ''],
    ['peer_nats_mqtt_msgs_per_s', fmt(metrics.peer_nats_mqtt_msgs_per_s), '-', '-', ''],
    ['peer_aedes_qos1_msgs_per_s', fmt(metrics.peer_aedes_qos1_msgs_per_s), '-', '-', ''],
    ['peer_one_thread_msgs_per_s', fmt(metrics.peer_one_thread_msgs_per_s), '-', '-', ''],
    [
      'floods_rss_mb_peak',
      fmt(metrics.floods_rss_mb_peak, 1),
      d.floods
        ? `< ${fmt(d.floods.memory_max_mb * d.floods.margin)} (${d.floods.margin * 100}% of MemoryMax)`
        : '-',
      '-',
      d.floods ? (d.floods.ok ? 'ok' : 'MISS') : '',
    ],
  ];
  const out = {
    suite: 'edge',
    at: new Date().toISOString(),
    run: {
      quick: opts.quick,
      profiled: opts.profile,
      phases: Object.keys(details),
      seconds: round((performance.now() - startedAt) / 1000),
    },
    host: {
      cpus: availableParallelism(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      other_load_cores_before_run: round(background),
    },
    agent: {
      build: agentBuild(),
      config: agentConfig('nats://127.0.0.1:<port>', opts.agentOverride),
      node_args: opts.agentNodeArgs,
      ...(opts.gcTrace ? { latency_node_args: ['--trace-gc'] } : {}),
    },
    metrics,
    targets: Object.fromEntries(Object.entries(targets).map(([k, t]) => [k, t.target ?? null])),
    notes: {
      bytes_written_per_reading:
        '/proc/<agent pid>/io write_bytes (bytes sent to the storage layer: SQLite WAL frames and checkpoints, fsync FULL) / readings committed, over the window of the rss10k phase (paced at 10,000/s), or of the ingest phase when rss10k did not run; the ingest phase figure and its wchar (all write syscalls incl. sockets) are in details.ingest',
      latency_p99_ms_at_1k: details.latency_1k ? d.latency_1k.method : undefined,
      rss: 'VmRSS of the agent process from /proc/<pid>/status, sampled every 200 ms; rss_mb_at_10k is the max over the measured window',
    },
    details,
    ...(profiles.length > 0 ? { profiles } : {}),
  };
  mkdirSync(resultsDir, { recursive: true });
  const standard =
    !opts.quick &&
    !opts.only &&
    Object.keys(opts.agentOverride).length === 0 &&
    opts.agentNodeArgs.length === 0 &&
    !opts.gcTrace;
  const name = opts.profile ? 'edge.profile.json' : standard ? 'edge.json' : 'edge.quick.json';
  writeFileSync(join(resultsDir, name), `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(`\n${formatTable(rows)}\n\n`);
  if (d.ingest) {
    process.stdout.write(
      `ingest: MQTT PUBACKs ${fmt(d.ingest.mqtt_puback_per_s)}/s, buffered ${fmt(d.ingest.buffered_per_s)}/s, JetStream-acked ${fmt(d.ingest.jetstream_acked_per_s)}/s; CPU cores ${JSON.stringify(d.ingest.cpu_cores)}\n`,
    );
  }
  if (d.latency_1k) {
    const l = d.latency_1k.publish_to_pubAck_ms;
    const p = d.latency_1k.publish_to_mqtt_puback_ms;
    process.stdout.write(
      `latency @1k: publish->JetStream PubAck p50 ${l.p50} / p90 ${l.p90} / p99 ${l.p99} / max ${l.max} ms (${fmt(d.latency_1k.samples)} readings, ${d.latency_1k.not_acked} unmatched); publish->MQTT PUBACK p50 ${p.p50} / p99 ${p.p99} ms\n`,
    );
  }
  if (d.load_10k) {
    const l = d.load_10k.publish_to_pubAck_ms;
    process.stdout.write(
      `at 10k/s: JetStream-acked ${fmt(d.load_10k.jetstream_acked_per_s)}/s, publish->PubAck p50 ${l.p50} / p99 ${l.p99} ms, ${fmt(d.load_10k.write_bytes_per_reading)} B written per reading; CPU ${JSON.stringify(d.load_10k.cpu_cores)}\n`,
    );
  }
  for (const [phase, key] of [
    ['latency', 'latency_1k'],
    ['rss10k', 'load_10k'],
    ['rss10k-unit', 'load_10k_unit_flags'],
    ['drain', 'drain'],
  ] as const) {
    const b = d[key]?.memory_breakdown_mb;
    if (!b) continue;
    process.stdout.write(
      `memory ${phase} at end: RSS ${fmt(b.total_mb, 1)} MB = node binary ${fmt(b.node_binary_mb, 1)} + other files ${fmt(b.other_files_mb, 1)} + anonymous ${fmt(b.anonymous_mb, 1)} + rest ${fmt(b.other_mb, 1)}; V8 heaps (used / total) main ${fmt(b.main_heap_used_mb, 1)} / ${fmt(b.main_heap_total_mb, 1)}, buffer thread ${fmt(b.buffer_thread_heap_used_mb, 1)} / ${fmt(b.buffer_thread_heap_total_mb, 1)}, external ${fmt(b.main_external_mb, 1)} MB\n`,
    );
  }
  if (d.latency_1k?.gc) {
    const parts = Object.entries(d.latency_1k.gc.isolates as Record<string, IsolateGc>).map(
      ([id, g]) =>
        `${g.first_seen === 1 ? 'main' : `isolate ${g.first_seen}`} (${id}) ${g.pauses} pauses (${g.per_s}/s), ${g.over_2ms} > 2 ms, ${g.over_5ms} > 5 ms, longest ${g.longest_ms} ms, heap ${g.heap_used_mb}/${g.heap_committed_mb} MB`,
    );
    process.stdout.write(`gc @1k over ${d.latency_1k.gc.window_s} s: ${parts.join('; ')}\n`);
  }
  if (d.drain) {
    process.stdout.write(
      `drain: ${fmt(d.drain.readings)} readings in ${d.drain.drain_s} s (${d.drain.complete ? 'complete' : 'INCOMPLETE'}), agent start ${d.drain.agent_start_to_listening_s} s; CPU ${JSON.stringify(d.drain.cpu_cores)}\n`,
    );
  }
  if (d.floods) {
    process.stdout.write(
      `floods: agent with ${d.floods.node_options}, idle ${fmt(d.floods.rss_idle_mb, 1)} MB, ${d.floods.unit} MemoryMax=${d.floods.memory_max_mb}M\n${formatTable(floodRows(d.floods))}\n`,
    );
  }
  process.stdout.write(`method notes and per-phase details: ${join('bench/results', name)}\n`);
}
