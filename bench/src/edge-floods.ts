/**
 * `pnpm bench edge --only=floods`: the agent's memory while hostile or broken MQTT clients try to fill
 * it, run with the heap flags and against the `MemoryMax` of its systemd unit (read from
 * deploy/systemd/fieldbeam-edge.service, so the figures follow the unit).
 *
 * Each flood is bounded by count and time. Per flood the agent's peak resident memory is taken two
 * ways: VmHWM (the kernel's high-water mark, reset before the flood through /proc/<pid>/clear_refs)
 * and VmRSS sampled every 100 ms.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  fixedHeader,
  type RawClient,
  rawClient,
  rawLogin,
  repoRoot,
  streamAnnounced,
  tempDir,
} from '@fieldbeam/test/harness';
import mqtt, { type MqttClient } from 'mqtt';
import { RssSampler } from './lib/proc.js';
import { type BenchAgent, type BenchNats, startBenchAgent } from './lib/servers.js';
import { smapsBreakdown } from './lib/smaps.js';
import { fmt, round, sleep } from './lib/stats.js';

const MiB = 1024 * 1024;
const USER = { username: 'bench', password: 'bench-secret-1' };

export interface FloodsContext {
  quick: boolean;
  log: (s: string) => void;
  /** Registers a closer with the suite (run on error and Ctrl-C); returns it, to run once. */
  track: (close: () => Promise<void>) => () => Promise<void>;
  /** nats-server with the streams made, as the suite's other phases have it. */
  natsWithStreams: () => Promise<{ nats: BenchNats; stop: () => Promise<void> }>;
}

export interface FloodResult {
  flood: string;
  what: string;
  seconds: number | null;
  vm_hwm_mb: number | null;
  rss_sampled_max_mb: number | null;
  rss_after_mb: number | null;
  /** After the flood: where the RSS sits (smaps) and both threads' V8 heaps, for what a peak is made of. */
  memory_after_mb?: Record<string, unknown>;
  counted: Record<string, number>;
}

export interface FloodsReport {
  unit: string;
  memory_max_mb: number;
  node_options: string;
  /** Peak over every flood must stay below this share of MemoryMax. */
  margin: number;
  rss_idle_mb: number | null;
  peak_mb: number | null;
  ok: boolean;
  floods: FloodResult[];
}

/** `MemoryMax=` and the `NODE_OPTIONS` heap flags of the agent's systemd unit. */
export function unitLimits(): { unit: string; memoryMaxMb: number; nodeArgs: string[] } {
  const unit = 'deploy/systemd/fieldbeam-edge.service';
  const text = readFileSync(join(repoRoot(), unit), 'utf8');
  const max = /^MemoryMax=(\d+)([KMG])$/m.exec(text);
  if (!max) throw new Error(`${unit}: no MemoryMax=<n>M line`);
  const scale = { K: 1 / 1024, M: 1, G: 1024 }[max[2] as 'K' | 'M' | 'G'];
  const nodeOptions = /NODE_OPTIONS=([^"\n]+)/.exec(text)?.[1] ?? '';
  return { unit, memoryMaxMb: Number(max[1]) * scale, nodeArgs: nodeOptions.split(' ').filter(Boolean) };
}

function status(pid: number): { rssMb: number; hwmMb: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
}

/** Sets VmHWM back to the current RSS (Linux: `echo 5 > /proc/<pid>/clear_refs`, as the owner or root). */
function resetHwm(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

async function counters(agent: BenchAgent, names: string[]): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${agent.httpPort}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(\S+?)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m?.[1] || !names.includes(m[1])) continue;
    // Unmatched topics are summed over their prefixes: the table shows how many, not where.
    const name = m[1].replace(/^fb_edge_/, '');
    const key = name === 'unmatched_topic_total' ? name : `${name}${m[2] ?? ''}`;
    out[key] = (out[key] ?? 0) + Number(m[3]);
  }
  return out;
}

const COUNTED = [
  'fb_edge_mqtt_refused_total',
  'fb_edge_unmatched_topic_total',
  'fb_edge_mqtt_not_retained_total',
  'fb_edge_rejected_total',
  'fb_edge_mqtt_denied_total',
  'fb_edge_mqtt_delivery_clients_forgotten_total',
];

/** The V8 heaps on /metrics: the main thread's (prom-client's defaults) and the buffer thread's. */
const HEAPS = [
  'nodejs_heap_size_total_bytes',
  'nodejs_external_memory_bytes',
  'fb_edge_buffer_thread_heap_total_bytes',
];

const diff = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(
    Object.entries(b)
      .map(([k, v]) => [k, v - (a[k] ?? 0)] as const)
      .filter(([, v]) => v !== 0),
  );

const login = (port: number, opts: mqtt.IClientOptions = {}) =>
  mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { ...USER, reconnectPeriod: 0, ...opts });

/** Runs `work` with a deadline: it gets a signal that aborts when `seconds` are up. */
async function bounded(seconds: number, work: (signal: AbortSignal) => Promise<string>): Promise<string> {
  const signal = AbortSignal.timeout(seconds * 1000);
  return work(signal);
}

/** QoS 1 publishes with `window` in flight, until `count` or the deadline. Returns how many were acknowledged. */
async function publishWindowed(
  client: MqttClient,
  count: number,
  window: number,
  signal: AbortSignal,
  message: (i: number) => { topic: string; payload: Buffer | string; retain?: boolean },
): Promise<number> {
  let next = 0;
  let acked = 0;
  const worker = async () => {
    while (next < count && !signal.aborted && client.connected) {
      const m = message(next++);
      try {
        await client.publishAsync(m.topic, m.payload, { qos: 1, retain: m.retain ?? false });
        acked++;
      } catch {
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return acked;
}

export async function runFloods(ctx: FloodsContext): Promise<FloodsReport> {
  const { log, track, quick } = ctx;
  const limits = unitLimits();
  const margin = 0.8;
  const { nats, stop: stopNats } = await ctx.natsWithStreams();
  const dir = tempDir('fieldbeam-bench-floods-');
  const removeDir = track(async () => dir.remove());
  const agent = await startBenchAgent(
    dir.path,
    {
      edge: 'bench-floods',
      nats: { servers: [nats.url] },
      mqtt: { mode: 'embedded', users: [{ ...USER, publish: ['#'], subscribe: ['#'] }] },
      sensors: [
        {
          topic: 'bench/+station/env',
          decoder: { type: 'json', fields: { seq: { variable: 'bench_sequence', unit: '1' } } },
        },
      ],
    },
    { nodeArgs: limits.nodeArgs, waitMs: 120_000 },
  );
  const stopAgent = track(() => agent.stop());
  const pid = agent.pid;
  log(
    `floods: agent pid ${pid} with ${limits.nodeArgs.join(' ')}; ${limits.unit} has MemoryMax=${limits.memoryMaxMb}M`,
  );
  await sleep(2000);
  const idle = status(pid).rssMb;
  const floods: FloodResult[] = [];

  const flood = async (name: string, seconds: number, work: (signal: AbortSignal) => Promise<string>) => {
    const before = await counters(agent, COUNTED);
    const hwmReset = resetHwm(pid);
    const sampler = new RssSampler(pid, 100);
    const t0 = performance.now();
    let what: string;
    try {
      what = await bounded(seconds, work);
    } finally {
      sampler.stop();
    }
    const took = (performance.now() - t0) / 1000;
    await sleep(500);
    const s = status(pid);
    const heaps = await counters(agent, HEAPS);
    const mb = (k: string) => round((heaps[k] ?? Number.NaN) / 1024 ** 2);
    const smaps = smapsBreakdown(pid);
    const result: FloodResult = {
      flood: name,
      what,
      seconds: round(took),
      vm_hwm_mb: hwmReset ? round(s.hwmMb) : null,
      rss_sampled_max_mb: round(sampler.max()),
      rss_after_mb: round(s.rssMb),
      memory_after_mb: {
        node_binary: smaps?.node_binary_mb,
        anonymous: smaps?.anonymous_mb,
        main_heap_total: mb('nodejs_heap_size_total_bytes'),
        main_external: mb('nodejs_external_memory_bytes'),
        buffer_thread_heap_total: mb('buffer_thread_heap_total_bytes'),
      },
      counted: diff(before, await counters(agent, COUNTED)),
    };
    floods.push(result);
    log(
      `  ${name}: ${what}; peak ${fmt(result.vm_hwm_mb ?? result.rss_sampled_max_mb, 1)} MB (MemoryMax ${limits.memoryMaxMb}), after ${fmt(result.rss_after_mb, 1)} MB ${JSON.stringify(result.memory_after_mb)}; ${JSON.stringify(result.counted)}`,
    );
  };

  try {
    // 1. Unauthenticated sockets, each announcing a 100 MiB CONNECT and sending its body.
    const sockets = quick ? 50 : 200;
    await flood('connect_flood', 60, async (signal) => {
      let sent = 0;
      let closed = 0;
      const one = async () => {
        if (signal.aborted) return;
        let c: RawClient;
        try {
          c = await rawClient(agent.mqttPort);
        } catch {
          return;
        }
        sent += await streamAnnounced(c, fixedHeader(0x10, 100 * MiB), 8 * MiB);
        if (await c.closed(5000)) closed++;
        c.socket.destroy();
      };
      // 32 at a time: more than the agent lets wait for a login (64 by default) is covered too.
      for (let i = 0; i < sockets && !signal.aborted; i += 32)
        await Promise.all(Array.from({ length: Math.min(32, sockets - i) }, one));
      return `${sockets} sockets announcing 100 MiB CONNECTs, ${fmt(sent / MiB)} MiB of body written, ${closed} closed by the agent`;
    });

    // 1b. Sockets that connect and never log in (each held until the agent closes it, at most 15 s).
    await flood('idle_sockets', 30, async () => {
      const n = quick ? 200 : 500;
      const clients: RawClient[] = [];
      for (let i = 0; i < n; i++) {
        try {
          clients.push(await rawClient(agent.mqttPort));
        } catch {
          // Refused before the handshake completed: the agent counts it.
        }
      }
      const closed = await Promise.all(clients.map((c) => c.closed(15_000)));
      for (const c of clients) c.socket.destroy();
      return `${n} sockets that never log in, ${closed.filter(Boolean).length} closed by the agent`;
    });

    // 2. Logged-in clients announcing a 64 MiB PUBLISH and sending its body.
    await flood('oversized_publish', 60, async () => {
      const clients = await Promise.all(
        [0, 1, 2].map((i) => rawLogin(agent.mqttPort, `big-${i}`, USER.username, USER.password)),
      );
      const sent = await Promise.all(
        clients.map((c) => streamAnnounced(c, fixedHeader(0x32, 64 * MiB), 64 * MiB)),
      );
      const closed = await Promise.all(clients.map((c) => c.closed(5000)));
      for (const c of clients) c.socket.destroy();
      return `3 logged-in clients announcing 64 MiB PUBLISHes, ${fmt(sent.reduce((a, b) => a + b, 0) / MiB)} MiB written, ${closed.filter(Boolean).length} closed by the agent`;
    });

    // 3. Retained messages: 250 KiB on unique unmatched topics, then 4 KiB on unique matched ones.
    await flood('retained_flood', 120, async (signal) => {
      const c = await login(agent.mqttPort, { clientId: 'retain-flood' });
      const big = Buffer.alloc(250 * 1024, 0x41);
      const unmatched = await publishWindowed(c, quick ? 100 : 400, 8, signal, (i) => ({
        topic: `flood/${i}/state`,
        payload: big,
        retain: true,
      }));
      const pad = 'x'.repeat(4000);
      const matched = await publishWindowed(c, quick ? 500 : 2000, 32, signal, (i) => ({
        topic: `bench/r${i}/env`,
        payload: JSON.stringify({ seq: i, pad }),
        retain: true,
      }));
      await c.endAsync();
      // A new subscriber is sent what was retained.
      const sub = await login(agent.mqttPort, { clientId: 'retain-reader' });
      let replayed = 0;
      sub.on('message', (_t, _p, packet) => {
        if (packet.retain) replayed++;
      });
      await sub.subscribeAsync('#', { qos: 0 });
      await sleep(2000);
      await sub.endAsync();
      return `${unmatched} x 250 KiB retained on unmatched topics, ${matched} x 4 KiB on matched ones; ${replayed} replayed to a new subscriber`;
    });

    // 4. Unique unmatched topics (one metric series each before they were bounded).
    await flood('unique_topics', 60, async (signal) => {
      const c = await login(agent.mqttPort, { clientId: 'topic-flood' });
      const n = quick ? 3000 : 20_000;
      let i = 0;
      for (; i < n && !signal.aborted; i++) {
        c.publish(`t${i}/x/y`, '1', { qos: 0 });
        if (i % 1000 === 999) await c.publishAsync('sync/x', '1', { qos: 1 });
      }
      await c.publishAsync('sync/x', '1', { qos: 1 });
      await c.endAsync();
      const text = await (await fetch(`http://127.0.0.1:${agent.httpPort}/metrics`)).text();
      const series = text.split('\n').filter((l) => l.startsWith('fb_edge_unmatched_topic_total{')).length;
      return `${i} unique unmatched topics; ${series} unmatched series, /metrics ${fmt(text.length / 1024)} KiB`;
    });

    // 5. Rejects: 200 KiB of garbage per message on a matched topic.
    await flood('reject_flood', 90, async (signal) => {
      const c = await login(agent.mqttPort, { clientId: 'reject-flood' });
      const garbage = Buffer.alloc(200 * 1024, 0x7b);
      const t0 = performance.now();
      const acked = await publishWindowed(c, quick ? 500 : 3000, 16, signal, (i) => ({
        topic: `bench/g${i % 10}/env`,
        payload: garbage,
      }));
      const s = (performance.now() - t0) / 1000;
      await c.endAsync();
      return `${acked} x 200 KiB garbage on matched topics acknowledged (${fmt(acked / s)}/s)`;
    });

    // 6. Many client ids with persistent sessions, one QoS 1 message each.
    await flood('client_ids', 120, async (signal) => {
      const n = quick ? 300 : 1500;
      let done = 0;
      const one = async (i: number) => {
        const c = await login(agent.mqttPort, { clientId: `sess-${i}`, clean: false });
        await c.publishAsync(`bench/s${i}/env`, JSON.stringify({ seq: i }), { qos: 1 });
        await c.endAsync();
        done++;
      };
      for (let i = 0; i < n && !signal.aborted; i += 20)
        await Promise.all(Array.from({ length: Math.min(20, n - i) }, (_, k) => one(i + k).catch(() => {})));
      return `${done} client ids with persistent sessions, one QoS 1 message each`;
    });
  } finally {
    await stopAgent();
    await stopNats();
    await removeDir();
  }
  const peaks = floods.map((f) => Math.max(f.vm_hwm_mb ?? 0, f.rss_sampled_max_mb ?? 0));
  const peak = peaks.length > 0 ? Math.max(...peaks) : null;
  return {
    unit: limits.unit,
    memory_max_mb: limits.memoryMaxMb,
    node_options: limits.nodeArgs.join(' '),
    margin,
    rss_idle_mb: round(idle),
    peak_mb: round(peak ?? Number.NaN),
    ok: peak !== null && peak < limits.memoryMaxMb * margin,
    floods,
  };
}

/** The floods as table rows: flood, peak, MemoryMax, share, what was counted. */
export function floodRows(r: FloodsReport): string[][] {
  return [
    ['flood', 'peak RSS MB', 'MemoryMax MB', 'share', 'counted'],
    ...r.floods.map((f) => {
      const peak = Math.max(f.vm_hwm_mb ?? 0, f.rss_sampled_max_mb ?? 0);
      return [
        f.flood,
        fmt(peak, 1),
        String(r.memory_max_mb),
        `${Math.round((100 * peak) / r.memory_max_mb)}%`,
        Object.entries(f.counted)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
      ];
    }),
  ];
}
