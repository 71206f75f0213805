/**
 * `pnpm bench pi`: the edge agent as a Raspberry Pi runs it, measured on this x86-64 host under arm64
 * emulation. EMULATED FIGURES: qemu-user translates every arm64 instruction (about 10x slower than the
 * same code native here) and its translation cache counts in the RSS (2-4x larger); a real Pi differs.
 *
 * test/pi/bench.sh sets up the emulated Pi exactly as the proof (test/pi/emulation.sh) does, through the
 * shared test/pi/proof-lib.sh: the arm64 .deb built by deploy/pi/build.sh, installed by the first-boot
 * script (downloaded from the collector's /edge/releases/) into an arm64 Debian rootfs, the agent started
 * as its systemd unit starts it, with nats-server and the collector on the host. Then it hands over the
 * agent's address and pid (one JSON line) and waits; this suite measures from the host:
 *   - ingest: MQTT QoS 1 readings/s acknowledged (PUBACK = committed to the agent's SQLite buffer) to
 *     x86 mqtt.js publishers (edge-load-publisher.js, the same load and payload as `pnpm bench edge`),
 *     bounded by time and count; buffered and JetStream-acknowledged/s from the agent's /metrics
 *   - memory: VmRSS of the emulated agent from /proc/<pid>/status (idle, peak, steady under load, after
 *     the backlog drained) and VmHWM
 *   - sizes: the bundle (.tar.zst), the .deb, the installed files
 * and tells the script to stop the agent (SIGTERM, clean exit checked) and take everything down.
 * Needs root (chroot, binfmt_misc). Results: bench/results/pi.json (pi.quick.json with --quick).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type NodeChild, startNodeChild } from './lib/child.js';
import { CpuMeter, RssSampler } from './lib/proc.js';
import { parsePrometheus } from './lib/servers.js';
import { fmt, monoMs, round, type Summary, sleep } from './lib/stats.js';
import { formatTable } from './lib/table.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const resultsDir = resolve(here, '../results');
const publisherScript = join(here, 'edge-load-publisher.js');
const benchScript = join(repo, 'test/pi/bench.sh');

const log = (s: string) => process.stdout.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);
const MiB = 1024 ** 2;

interface Options {
  quick: boolean;
  warmupS: number;
  measureS: number;
  idleS: number;
  publishers: number;
  window: number;
  maxReadings: number;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      seconds: { type: 'string' },
      publishers: { type: 'string' },
      window: { type: 'string' },
      'max-readings': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(`pnpm bench pi [--quick] [--seconds=S] [--publishers=N] [--window=W] [--max-readings=N]

The edge agent's arm64 build, installed from its .deb and run under qemu-user emulation (as root).
EMULATED FIGURES: slower and larger than on a Raspberry Pi (qemu translates every instruction and its
code cache counts in the RSS). Setup is test/pi/emulation.sh's (first run builds and caches: minutes).
--seconds        measured window after a warm-up of 10 s (default 20; --quick: 3 s, 5 s)
--publishers     x86 mqtt.js QoS 1 publishers (default 2), each with at most --window (default 1000) unacked
--max-readings   bound on readings per publisher (default 200000)
Results: bench/results/pi.json (pi.quick.json with --quick or other non-default flags).
`);
    process.exit(0);
  }
  const quick = values.quick === true;
  return {
    quick,
    // Under emulation the agent needs a while to reach its pace (qemu translates, V8 tiers up).
    warmupS: quick ? 3 : 10,
    measureS: Number(values.seconds ?? (quick ? 5 : 20)),
    idleS: quick ? 2 : 3,
    publishers: Number(values.publishers ?? 2),
    window: Number(values.window ?? 1000),
    maxReadings: Number(values['max-readings'] ?? 200_000),
  };
}

interface Ready {
  type: 'ready';
  agentPid: number;
  mqttUrl: string;
  agentHttp: string;
  collectorUrl: string;
  edge: string;
  release: {
    version: string;
    node?: string;
    bundle: { file: string; bytes: number };
    deb: { file: string; bytes: number };
  };
  installedBytes: number;
  agentReadySeconds: number;
  qemuCpu: string;
  node: string;
  setupSeconds: Record<string, number>;
}

/** test/pi/bench.sh as a child: JSON lines on its stdout, its log on our stderr, "stop" on its stdin. */
class EmulatedPi {
  private readonly messages: Record<string, unknown>[] = [];
  private readonly waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;
  private constructor(readonly child: ChildProcess) {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      if (!line.startsWith('{')) return void process.stderr.write(`${line}\n`);
      try {
        this.messages.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        process.stderr.write(`${line}\n`);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    this.exited = new Promise((resolve) => {
      const done = () => {
        for (const w of this.waiters.splice(0)) w();
        resolve(child.exitCode);
      };
      // 'close' once stdout is read to its end; 'exit' plus a grace period in case a leftover holds the pipe.
      child.once('close', done);
      child.once('exit', () => setTimeout(done, 2000).unref());
    });
  }
  static start(): EmulatedPi {
    const child = spawn('bash', [benchScript], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.on('error', () => {});
    return new EmulatedPi(child);
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  /** The message of this type, once it came; undefined when the script exited without it. */
  async message<T>(type: string, timeoutMs: number): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.messages.find((x) => x.type === type);
      if (m) return m as T;
      if (!this.running || Date.now() > deadline) return undefined;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 1000);
      });
    }
  }
  /** Asks the script to stop the agent and take everything down; SIGTERM (its cleanup trap) if it hangs. */
  private stopping = false;
  async stop(): Promise<{ stopped?: { cleanExit: boolean }; cleanup?: { ok: boolean; cleanup: string } }> {
    if (!this.stopping && this.running) this.child.stdin?.end('stop\n');
    this.stopping = true;
    const t = setTimeout(() => this.child.kill('SIGTERM'), 180_000);
    await this.exited;
    clearTimeout(t);
    return {
      stopped: this.messages.find((m) => m.type === 'stopped') as { cleanExit: boolean } | undefined,
      cleanup: this.messages.find((m) => m.type === 'cleanup') as
        | { ok: boolean; cleanup: string }
        | undefined,
    };
  }
}

function vmStatus(pid: number): { rssMb: number; hwmMb: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? Number.NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return { rssMb: Number.NaN, hwmMb: Number.NaN };
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : (s[Math.floor((s.length - 1) / 2)] as number);
};

interface Probe {
  t: number;
  readings: number;
  forwarded: number;
}
async function probe(agentHttp: string): Promise<Probe> {
  const m = parsePrometheus(await (await fetch(`${agentHttp}/metrics`)).text());
  return {
    t: monoMs(),
    readings: m.get('fb_edge_readings_total') ?? Number.NaN,
    forwarded: m.get('fb_edge_forwarded_total') ?? Number.NaN,
  };
}
const perS = (a: number, b: number, ta: number, tb: number) => ((b - a) * 1000) / (tb - ta);

async function measure(pi: Ready, opts: Options) {
  const rss = new RssSampler(pi.agentPid, 200);
  const publishers: NodeChild[] = [];
  try {
    log(`idle ${opts.idleS} s (VmRSS of the emulated agent, pid ${pi.agentPid})`);
    const idleFrom = performance.now();
    await sleep(opts.idleS * 1000);
    const idleMb = median(rss.samples.filter((s) => s.at >= idleFrom).map((s) => s.mb));

    log(
      `ingest: ${opts.publishers} x86 mqtt.js QoS 1 publishers x window ${opts.window}, warm-up ${opts.warmupS} s, measured ${opts.measureS} s (at most ${fmt(opts.maxReadings)} readings each)`,
    );
    const totalMs = (opts.warmupS + opts.measureS + 2) * 1000;
    for (let i = 0; i < opts.publishers; i++) {
      publishers.push(
        startNodeChild(publisherScript, {
          url: pi.mqttUrl,
          id: `pi${i}`,
          window: opts.window,
          rate: 0,
          durationMs: totalMs,
          maxMessages: opts.maxReadings,
          recordTimes: false,
        }),
      );
    }
    await Promise.all(publishers.map((c) => c.next('ready', 30_000)));
    for (const c of publishers) c.send('go');
    const acked = () => publishers.reduce((s, c) => s + Number(c.last('progress')?.acked ?? 0), 0);
    await sleep(opts.warmupS * 1000);
    const cpu = new CpuMeter({
      agent: pi.agentPid,
      ...Object.fromEntries(publishers.map((c, i) => [`publisher${i}`, c.pid])),
    }).start();
    const first = await probe(pi.agentHttp);
    const acked0 = acked();
    const measureFrom = performance.now();
    let prev = first;
    const endAt = measureFrom + opts.measureS * 1000;
    while (performance.now() < endAt) {
      await sleep(Math.min(5000, endAt - performance.now()));
      const cur = await probe(pi.agentHttp);
      log(
        `  ${((cur.t - first.t) / 1000).toFixed(0)}/${opts.measureS} s: buffered ${fmt(perS(prev.readings, cur.readings, prev.t, cur.t))}/s, JetStream-acked ${fmt(perS(prev.forwarded, cur.forwarded, prev.t, cur.t))}/s, VmRSS ${fmt(rss.last)} MiB`,
      );
      prev = cur;
    }
    const last = prev;
    const acked1 = acked();
    const cpuUse = cpu.stop();
    const measureTo = performance.now();
    for (const c of publishers) c.send('stop');
    const done = await Promise.all(publishers.map((c) => c.next('done', 60_000)));
    await Promise.all(publishers.map((c) => c.exited));
    const loadSamples = rss.samples.filter((s) => s.at >= measureFrom && s.at <= measureTo).map((s) => s.mb);
    const steadyMb = median(loadSamples.slice(Math.floor(loadSamples.length / 2)));
    const peakMb = rss.max(idleFrom);

    // The backlog drains to JetStream; then the agent idles again.
    const drainFrom = monoMs();
    let end = await probe(pi.agentHttp);
    while (end.forwarded < end.readings && monoMs() - drainFrom < 120_000) {
      await sleep(500);
      end = await probe(pi.agentHttp);
    }
    const drainS = (monoMs() - drainFrom) / 1000;
    const afterFrom = performance.now();
    await sleep(opts.idleS * 1000);
    const afterMb = median(rss.samples.filter((s) => s.at >= afterFrom).map((s) => s.mb));
    const status = vmStatus(pi.agentPid);
    const puback = (done[0]?.puback ?? {}) as Partial<Summary>;
    return {
      window_s: round((last.t - first.t) / 1000),
      mqtt_puback_per_s: round(((acked1 - acked0) * 1000) / (last.t - first.t)),
      buffered_per_s: round(perS(first.readings, last.readings, first.t, last.t)),
      jetstream_acked_per_s: round(perS(first.forwarded, last.forwarded, first.t, last.t)),
      backlog_at_end: last.readings - last.forwarded,
      drained_after_s: end.forwarded >= end.readings ? round(drainS) : null,
      readings_acked_total: done.reduce((s, d) => s + Number(d.acked ?? 0), 0),
      publish_errors: done.reduce((s, d) => s + Number(d.errors ?? 0), 0),
      publish_to_puback_ms: {
        n: puback.n ?? 0,
        p50: round(puback.p50 ?? Number.NaN),
        p99: round(puback.p99 ?? Number.NaN),
        max: round(puback.max ?? Number.NaN),
      },
      agent_cpu_cores: round(cpuUse.agent ?? Number.NaN),
      publishers_cpu_cores: round(
        publishers.reduce((s, _c, i) => s + (cpuUse[`publisher${i}`] ?? Number.NaN), 0),
      ),
      other_cpu_cores: round(cpuUse.other ?? Number.NaN),
      vmrss_mb: {
        idle: round(idleMb),
        peak: round(Math.max(peakMb, status.rssMb || 0)),
        steady_under_load: round(steadyMb),
        after_drain: round(afterMb),
        vmhwm: round(status.hwmMb),
        samples: rss.samples.length,
      },
    };
  } finally {
    rss.stop();
    await Promise.all(publishers.map((c) => c.stop()));
  }
}

/** The native figures of the last `pnpm bench edge`, for scale (same load generator and payload). */
function nativeReference(): { at: string; mqtt_puback_per_s: number; rss_mb_max: number } | undefined {
  const file = join(resultsDir, 'edge.json');
  if (!existsSync(file)) return undefined;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as {
      at: string;
      details?: { ingest?: { mqtt_puback_per_s?: number; rss_mb_max?: number } };
    };
    const i = r.details?.ingest;
    if (!i?.mqtt_puback_per_s) return undefined;
    return { at: r.at, mqtt_puback_per_s: i.mqtt_puback_per_s, rss_mb_max: i.rss_mb_max ?? Number.NaN };
  } catch {
    return undefined;
  }
}

export async function runPiSuite(argv: string[]): Promise<void> {
  const opts = options(argv);
  if (process.getuid?.() !== 0) {
    throw new Error('pnpm bench pi needs root (chroot, binfmt_misc, mounts): run it as root');
  }
  const t0 = monoMs();
  const load0 = loadavg()[0] ?? Number.NaN;
  log('setting up the emulated Raspberry Pi (test/pi/bench.sh; the first run builds and caches for minutes)');
  const pi = EmulatedPi.start();
  const onSignal = () => void pi.stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result: Awaited<ReturnType<typeof measure>> | undefined;
  let ready: Ready | undefined;
  let failure: Error | undefined;
  try {
    ready = await pi.message<Ready>('ready', 30 * 60_000);
    if (!ready)
      throw new Error('test/pi/bench.sh ended before the emulated agent was ready (its log is above)');
    log(
      `agent ready in ${ready.agentReadySeconds} s (arm64 Node ${ready.node}, QEMU_CPU=${ready.qemuCpu}); setup ${JSON.stringify(ready.setupSeconds)}`,
    );
    result = await measure(ready, opts);
  } catch (err) {
    failure = err as Error;
  }
  const end = await pi.stop();
  process.removeListener('SIGINT', onSignal);
  process.removeListener('SIGTERM', onSignal);
  if (failure) throw failure;
  if (!ready || !result) throw new Error('no result');
  if (!end.cleanup?.ok) throw new Error(`cleanup of the emulated Pi failed: ${JSON.stringify(end.cleanup)}`);

  const native = nativeReference();
  const r = ready.release;
  const sizes = {
    bundle_bytes: r.bundle.bytes,
    deb_bytes: r.deb.bytes,
    installed_bytes: ready.installedBytes,
  };
  const mb = (b: number) => `${fmt(b / MiB, 1)} MiB`;
  const v = result.vmrss_mb;
  const rows = [
    ['emulated arm64 agent (qemu-user; NOT Raspberry Pi figures)', 'value'],
    ['MQTT QoS 1 messages/s acknowledged (PUBACK, in the buffer)', fmt(result.mqtt_puback_per_s)],
    ['  readings buffered/s (agent /metrics)', fmt(result.buffered_per_s)],
    ['  readings JetStream-acknowledged/s (agent /metrics)', fmt(result.jetstream_acked_per_s)],
    [
      '  readings per message',
      fmt((result.buffered_per_s ?? Number.NaN) / (result.mqtt_puback_per_s ?? Number.NaN), 1),
    ],
    [
      '  publish -> PUBACK p50 / p99 ms',
      `${fmt(result.publish_to_puback_ms.p50)} / ${fmt(result.publish_to_puback_ms.p99)}`,
    ],
    ['  backlog at end, drained after s', `${fmt(result.backlog_at_end)}, ${fmt(result.drained_after_s, 1)}`],
    [
      '  CPU cores: agent (qemu) / publishers / rest of the host',
      `${fmt(result.agent_cpu_cores, 2)} / ${fmt(result.publishers_cpu_cores, 2)} / ${fmt(result.other_cpu_cores, 2)}`,
    ],
    ['VmRSS MiB idle', fmt(v.idle)],
    ['VmRSS MiB peak (VmHWM)', `${fmt(v.peak)} (${fmt(v.vmhwm)})`],
    ['VmRSS MiB steady under load (median, 2nd half of the window)', fmt(v.steady_under_load)],
    ['VmRSS MiB after the backlog drained', fmt(v.after_drain)],
    ['agent ready after start, s', fmt(ready.agentReadySeconds, 1)],
    [`bundle ${r.bundle.file}`, mb(sizes.bundle_bytes)],
    [`.deb ${r.deb.file}`, mb(sizes.deb_bytes)],
    ['installed (/usr/lib/fieldbeam-edge)', mb(sizes.installed_bytes)],
  ];
  if (native) {
    rows.push([
      `native x86 for scale (pnpm bench edge, ${native.at.slice(0, 10)}): PUBACK/s, RSS MiB max`,
      `${fmt(native.mqtt_puback_per_s)}, ${fmt(native.rss_mb_max)}`,
    ]);
  }
  process.stdout.write(`\n${formatTable(rows)}\n`);
  process.stdout.write(
    `\nEmulated: qemu-user translates every arm64 instruction (about 10x slower than native here) and its
translation cache is part of VmRSS (2-4x larger). A Raspberry Pi's own speed and memory differ; use these
to compare builds with each other, not with a Pi. ${opts.publishers} publishers x window ${opts.window},
the payload of pnpm bench edge, taken by the sensor 'edge add --sensor bench/+station/env=json'
provisions, which makes each numeric field a reading (pnpm bench edge maps one); stop: SIGTERM, clean exit ${end.stopped?.cleanExit ? 'yes' : 'NO'}.\n`,
  );
  const defaults = !opts.quick && opts.measureS === 20 && opts.publishers === 2 && opts.window === 1000;
  const out = {
    suite: 'pi',
    at: new Date().toISOString(),
    emulated: true,
    note: 'qemu-user arm64 emulation on an x86-64 host: rates ~10x below and RSS 2-4x above native; not Raspberry Pi figures',
    run: {
      quick: opts.quick,
      seconds: Math.round((monoMs() - t0) / 1000),
      warmup_s: opts.warmupS,
      measure_s: opts.measureS,
      publishers: opts.publishers,
      window: opts.window,
      max_readings_per_publisher: opts.maxReadings,
      host_load_1m_before: round(load0),
    },
    agent: {
      version: r.version,
      node: ready.node,
      qemu_cpu: ready.qemuCpu,
      ready_s: ready.agentReadySeconds,
      clean_stop: end.stopped?.cleanExit ?? false,
    },
    setup_s: ready.setupSeconds,
    ingest: result,
    sizes,
    native_reference: native ?? null,
  };
  mkdirSync(resultsDir, { recursive: true });
  const name = defaults ? 'pi.json' : 'pi.quick.json';
  writeFileSync(join(resultsDir, name), `${JSON.stringify(out, null, 2)}\n`);
  log(`results: bench/results/${name}`);
  if (!end.stopped?.cleanExit) throw new Error('the emulated agent did not exit cleanly on SIGTERM');
}
