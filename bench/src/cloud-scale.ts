import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyLines, ensureStreams, INGEST_COLUMNS, migrate, observationCopyLine } from '@fieldbeam/cloud';
import {
  type BatchHead,
  batchMsgId,
  encodeBatchV2,
  type Observation,
  observationId,
  type StreamSpec,
  streams,
  subjects,
} from '@fieldbeam/protocol';
import {
  type CollectorProcess,
  descendants,
  metricSum,
  startCollectorProcess,
  startNatsCluster,
  startPostgres,
  type TestPostgres,
  tempDir,
} from '@fieldbeam/test/harness';
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection, nanos } from '@nats-io/transport-node';
import pg from 'pg';
import { cpuSeconds, machineBusySeconds } from './lib/proc.js';
import { startBenchNats } from './lib/servers.js';
import { sleep } from './lib/stats.js';
import { formatTable } from './lib/table.js';

/**
 * `pnpm bench cloud --collectors 1,2,3 [--replicas 1|3]`: the ingest rate of 1, 2, 3 collector
 * processes (`fieldbeam-cloud run`, as deployed) sharing one durable ingest consumer and one Postgres.
 *
 * The OBS stream is filled before each run, not fed live: on two cores a live publisher would take
 * CPU from the collectors it measures, and a fleet's real publishers are on other machines. What is
 * measured is therefore the collectors' capacity (the rate at which they drain a stream), in two
 * shapes of traffic:
 *   - `backlog`: v2 batches of 2,000 readings (the agent's `v2_batch_observations`), as edges send after
 *     an outage or under heavy local load;
 *   - `live`: one reading per batch, as an agent forwarding 1 reading per second sends (its forwarder
 *     publishes as soon as a reading is committed), from 10,000 simulated edges.
 * Every run has its own stream contents, an empty database and a new consumer. The consumer is made
 * first with `max_ack_pending` 1 (a trickle while the collectors start) and opened once every one of
 * them is healthy, so all start together; the rate counts only what came after that.
 */

const results = join(dirname(fileURLToPath(import.meta.url)), '../results');

/** As the collector's ingest makes its consumer (cloud/src/ingest/ingest.ts INGEST_ACK_WAIT_MS). */
const INGEST_ACK_WAIT_MS = 15_000;
const OPEN_MAX_ACK_PENDING = 10_000;
/** Each run is bounded: a run that has not drained its stream by then fails the bench. */
const RUN_TIMEOUT_MS = 600_000;
const BACKLOG_EDGES = 20;
const BACKLOG_BATCH = 2000;
// Readings an hour of yesterday and on: inside the collector's accepted time range.
const T0 = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 86_400_000;

type Shape = 'backlog' | 'live';

interface ScaleFlags {
  collectors: number[];
  replicas: 1 | 3;
  shapes: Shape[];
  /** Readings in the backlog shape. */
  readings: number;
  /** Messages (= readings) in the live shape. */
  messages: number;
  /** Edges the live shape's messages come from. */
  liveEdges: number;
  /** Runs of each shape and count; the summary has their median. */
  repeat: number;
}

const HELP = `pnpm bench cloud --collectors 1,2,3 [--replicas 1|3] [--shapes backlog,live] [--readings 1000000] [--messages 100000]
  Ingest rate of 1..4 collector processes sharing the ingest consumer against one Postgres, draining an
  OBS stream filled beforehand: backlog (v2 batches of 2,000 readings from 20 edges) and live (one reading
  per batch from 10,000 edges). --replicas 3 runs it against a 3-node JetStream cluster with 3-replica
  streams. Results merged into bench/results/cloud-scale.json (one entry per replica count).
`;

function parseFlags(argv: string[]): ScaleFlags {
  const value = (name: string) => {
    const at = argv.indexOf(`--${name}`);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const whole = (name: string, dflt: number, min: number, max: number) => {
    const v = Number(value(name) ?? dflt);
    if (!Number.isInteger(v) || v < min || v > max)
      throw new Error(`--${name}: a whole number from ${min} to ${max}`);
    return v;
  };
  const collectors = (value('collectors') ?? '1,2,3').split(',').map(Number);
  if (collectors.some((n) => !Number.isInteger(n) || n < 1 || n > 4))
    throw new Error('--collectors: a comma-separated list of counts from 1 to 4, e.g. 1,2,3');
  const replicas = whole('replicas', 1, 1, 3);
  if (replicas === 2) throw new Error('--replicas: 1 (one server) or 3 (a 3-node cluster)');
  const shapes = (value('shapes') ?? 'backlog,live').split(',') as Shape[];
  if (shapes.some((s) => s !== 'backlog' && s !== 'live')) throw new Error('--shapes: backlog, live or both');
  return {
    collectors,
    replicas: replicas as 1 | 3,
    shapes,
    readings: whole('readings', 1_000_000, 10_000, 10_000_000),
    messages: whole('messages', 100_000, 10_000, 1_000_000),
    liveEdges: whole('live-edges', 10_000, 1, 100_000),
    repeat: whole('repeat', 1, 1, 5),
  };
}

/** One message of the stream before it is published. */
interface Outgoing {
  edge: string;
  msgId: string;
  data: Uint8Array;
  readings: number;
}

function reading(edge: string, station: string, variable: string, t: number, value: number): Observation {
  const time = new Date(t).toISOString();
  const unit = variable === 'air_temperature' ? 'degC' : '%';
  return {
    id: observationId({ source: 'mqtt', station, variable, time, value }),
    source: 'mqtt',
    edge,
    station,
    variable,
    value,
    unit,
    time,
    received: time,
  };
}

function head(edge: string, first: number, last: number): BatchHead {
  return {
    edge,
    seq: [first, last],
    sent: new Date().toISOString(),
    buffer: { id: `buf-${edge}`, start: 1 },
  };
}

/**
 * The backlog shape: `n` readings, each of 20 edges with 10 stations of 2 variables read every second,
 * in v2 batches of 2,000 per edge, edges interleaved in time order. Yields the observations too, for the
 * COPY peer.
 */
function* backlogMessages(n: number, nonce: string): Generator<Outgoing & { observations: Observation[] }> {
  const perEdge = Math.ceil(n / BACKLOG_EDGES);
  const batches = Math.ceil(perEdge / BACKLOG_BATCH);
  let made = 0;
  for (let b = 0; b < batches; b++) {
    for (let e = 0; e < BACKLOG_EDGES && made < n; e++) {
      const edge = `gw-${String(e).padStart(2, '0')}`;
      const observations: Observation[] = [];
      for (let i = b * BACKLOG_BATCH; i < (b + 1) * BACKLOG_BATCH && i < perEdge && made < n; i++, made++) {
        const series = i % 20;
        const t = T0 + Math.floor(i / 20) * 1000;
        const variable = series % 2 ? 'relative_humidity' : 'air_temperature';
        const value =
          Math.round((series % 2 ? 50 + (i % 997) / 100 : 10 + e / 10 + (i % 613) / 100) * 100) / 100;
        observations.push(reading(edge, `${edge}-st-${series >> 1}`, variable, t, value));
      }
      if (observations.length === 0) continue;
      const first = b * BACKLOG_BATCH + 1;
      const last = first + observations.length - 1;
      yield {
        edge,
        msgId: batchMsgId(edge, nonce, first, last),
        data: encodeBatchV2(head(edge, first, last), observations),
        readings: observations.length,
        observations,
      };
    }
  }
}

/** The live shape: `n` batches of one reading, edge after edge each second, each edge's seq counting up. */
function* liveMessages(n: number, edges: number, nonce: string): Generator<Outgoing> {
  for (let i = 0; i < n; i++) {
    const e = i % edges;
    const seq = Math.floor(i / edges) + 1;
    const edge = `sim-${String(e).padStart(5, '0')}`;
    const value = Math.round((12 + (e % 50) / 10 + (seq % 37) / 100) * 100) / 100;
    const o = reading(edge, `${edge}-st`, 'air_temperature', T0 + seq * 1000, value);
    yield {
      edge,
      msgId: batchMsgId(edge, nonce, seq, seq),
      data: encodeBatchV2(head(edge, seq, seq), [o]),
      readings: 1,
    };
  }
}

/** Publishes the messages with a window of PubAcks outstanding; returns counts and payload bytes. */
async function fill(
  nc: NatsConnection,
  messages: Iterable<Outgoing>,
): Promise<{ messages: number; readings: number; payloadBytes: number; msgIdBytes: number }> {
  const js = jetstream(nc);
  // A shared machine can hold a PubAck up for seconds: publish again (the msg id makes it once).
  const publish = async (m: Outgoing): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        await js.publish(subjects.obs(m.edge), m.data, { msgID: m.msgId, timeout: 20_000 });
        return;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  };
  const inflight: Promise<unknown>[] = [];
  const out = { messages: 0, readings: 0, payloadBytes: 0, msgIdBytes: 0 };
  for (const m of messages) {
    inflight.push(publish(m));
    out.messages++;
    out.readings += m.readings;
    out.payloadBytes += m.data.length;
    out.msgIdBytes += m.msgId.length;
    if (inflight.length >= 256) await Promise.all(inflight.splice(0));
  }
  await Promise.all(inflight);
  return out;
}

/** CPU seconds used so far by a group of processes (each pid's own; children are listed by `pids`). */
class CpuGroups {
  private first = new Map<number, number>();
  private t0 = 0;
  private machine0 = 0;
  constructor(private readonly groups: Record<string, () => number[]>) {}
  start(): void {
    this.t0 = performance.now();
    this.machine0 = machineBusySeconds();
    for (const pids of Object.values(this.groups))
      for (const pid of pids()) this.first.set(pid, cpuSeconds(pid));
    this.first.set(process.pid, cpuSeconds(process.pid));
  }
  /** Cores each group used since `start()` (a process started since counts whole), and `other`. */
  stop(): Record<string, number> {
    const secs = (performance.now() - this.t0) / 1000;
    const out: Record<string, number> = {};
    let listed = 0;
    const used = (pid: number) => Math.max(0, (cpuSeconds(pid) || 0) - (this.first.get(pid) ?? 0));
    for (const [name, pids] of Object.entries({ ...this.groups, bench: () => [process.pid] })) {
      out[name] = pids().reduce((s, pid) => s + used(pid), 0) / secs;
      listed += out[name] ?? 0;
    }
    out.other = Math.max(0, (machineBusySeconds() - this.machine0) / secs - listed);
    for (const k of Object.keys(out)) out[k] = Math.round((out[k] ?? 0) * 100) / 100;
    return out;
  }
}

/** The NATS side of a configuration: one server, or a 3-node cluster. */
interface Servers {
  url: string;
  pids(): number[];
  describe: string;
  close(): Promise<void>;
}

async function startServers(replicas: 1 | 3): Promise<Servers> {
  if (replicas === 1) {
    const nats = await startBenchNats();
    return { url: nats.url, pids: () => [nats.pid], describe: 'one nats-server', close: () => nats.close() };
  }
  const cluster = await startNatsCluster();
  return {
    url: cluster.url,
    pids: () => cluster.nodes.map((n) => n.pid).filter((pid) => pid > 0),
    describe: `${cluster.nodes.length}-node nats-server cluster (deploy/nats/cluster-node.conf)`,
    close: () => cluster.stop(),
  };
}

/** The collector's stream definitions at this replica count. */
function streamSpecsAt(replicas: number): StreamSpec[] {
  return Object.values(streams).map((s) => ({ ...s, replicas }));
}

interface RunResult {
  shape: Shape;
  collectors: number;
  readings: number;
  messages: number;
  /** Readings committed before the consumer was opened (collectors starting), not in the rate. */
  head_readings: number;
  seconds: number;
  obs_per_s: number;
  msgs_per_s: number;
  payload_bytes_per_msg: number;
  payload_bytes_per_reading: number;
  stream_bytes_per_msg: number;
  pg_bytes_per_row: number;
  /** ingest_batches (one row per message), edge_seq_ranges and edge_buffers, per message. */
  pg_bookkeeping_bytes_per_msg: number;
  commit_ms_mean: number;
  rounds: number;
  /** Transactions Postgres committed while the rate was measured, per second: ingest rounds and bookkeeping. */
  pg_commits_per_s: number;
  /** Live edges' sequence-range rows left (completeness bookkeeping, compacted beside ingest). */
  seq_range_rows: number;
  cpu_cores: Record<string, number>;
  /**
   * CPU microseconds per reading of collectors, Postgres and NATS (cores x seconds / readings): less
   * swayed by the rest of a shared machine than the rate, and what a projection multiplies.
   */
  cpu_us_per_reading: Record<string, number>;
  loadavg_after: number[];
}

interface Ctx {
  nats: Servers;
  nc: NatsConnection;
  jsm: JetStreamManager;
  postgres: TestPostgres;
  pool: pg.Pool;
  postmaster: number;
  dir: string;
  extraEnv: Record<string, string>;
}

/**
 * A metric summed over the collectors. A collector busy on a loaded machine may miss the scrape's
 * 5 s timeout: it is asked again, for up to a minute, before the run fails.
 */
const sumOf = async (collectors: readonly CollectorProcess[], name: string) => {
  let sum = 0;
  for (const c of collectors) {
    for (let attempt = 1; ; attempt++) {
      const m = await c.metrics();
      if (m) {
        sum += metricSum(m, name);
        break;
      }
      if (attempt >= 12 || !c.running)
        throw new Error(`collector ${c.name} does not answer /metrics:\n${c.process?.output() ?? ''}`);
    }
  }
  return sum;
};

/** Empties what one run leaves: the stream's messages, the ingest tables, dirty pages. */
async function reset(ctx: Ctx): Promise<void> {
  await ctx.jsm.streams.purge(streams.OBS.name);
  await ctx.pool.query('TRUNCATE observations, ingest_batches, edge_seq_ranges, edge_buffers, dead_letters');
  const admin = new pg.Client(ctx.postgres.superuserUrl);
  await admin.connect();
  await admin.query('CHECKPOINT').finally(() => admin.end());
}

/** Transactions committed in the database so far (every backend's; the statistics lag by up to 1 s). */
async function pgCommits(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()',
  );
  return Number(rows[0]?.n ?? 0);
}

/** Bytes on disk (indexes included) of the observations' partitions, and of ingest's per-message bookkeeping. */
async function tableBytes(pool: pg.Pool): Promise<{ observations: number; bookkeeping: number }> {
  const { rows } = await pool.query<{ o: string; b: string }>(
    `SELECT (SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits
             WHERE inhparent = 'observations'::regclass) AS o,
            pg_total_relation_size('ingest_batches') + pg_total_relation_size('edge_seq_ranges')
              + pg_total_relation_size('edge_buffers') AS b`,
  );
  return { observations: Number(rows[0]?.o ?? 0), bookkeeping: Number(rows[0]?.b ?? 0) };
}

async function runOnce(ctx: Ctx, shape: Shape, k: number, flags: ScaleFlags): Promise<RunResult> {
  await reset(ctx);
  const nonce = randomBytes(6).toString('hex');
  const filled = await fill(
    ctx.nc,
    shape === 'backlog'
      ? backlogMessages(flags.readings, nonce)
      : liveMessages(flags.messages, flags.liveEdges, nonce),
  );
  const streamBytes = (await ctx.jsm.streams.info(streams.OBS.name)).state.bytes;
  const consumer = `scale-${shape}-${k}-${nonce}`;
  // Closed to a trickle until every collector is up (see the module comment).
  await ctx.jsm.consumers.add(streams.OBS.name, {
    durable_name: consumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(INGEST_ACK_WAIT_MS),
    max_ack_pending: 1,
    max_deliver: -1,
  });
  const collectors: CollectorProcess[] = [];
  try {
    collectors.push(
      ...(await Promise.all(
        Array.from({ length: k }, (_, i) =>
          startCollectorProcess({
            name: `c${i + 1}`,
            natsUrl: ctx.nats.url,
            databaseUrl: ctx.postgres.url,
            dataDir: join(ctx.dir, `${consumer}-c${i + 1}`),
            consumer,
            env: ctx.extraEnv,
          }),
        ),
      )),
    );
    const cpu = new CpuGroups({
      collectors: () => collectors.map((c) => c.process?.pid ?? -1),
      nats: () => ctx.nats.pids(),
      postgres: () => [ctx.postmaster, ...descendants(ctx.postmaster)],
    });
    const head = await sumOf(collectors, 'fb_cloud_ingest_observations_total');
    const commits0 = await pgCommits(ctx.pool);
    const t0 = performance.now();
    cpu.start();
    await ctx.jsm.consumers.update(streams.OBS.name, consumer, { max_ack_pending: OPEN_MAX_ACK_PENDING });
    let done = head;
    while (done < filled.readings) {
      if (performance.now() - t0 > RUN_TIMEOUT_MS)
        throw new Error(
          `${k} collector(s) stored ${done} of ${filled.readings} readings in ${RUN_TIMEOUT_MS} ms`,
        );
      for (const c of collectors)
        if (!c.running) throw new Error(`collector ${c.name} exited:\n${c.process?.output() ?? ''}`);
      await sleep(100);
      done = await sumOf(collectors, 'fb_cloud_ingest_observations_total');
    }
    const seconds = (performance.now() - t0) / 1000;
    const cores = cpu.stop();
    const commits = (await pgCommits(ctx.pool)) - commits0;
    // Acks follow each round's announcements: wait for them, so nothing is left for another run.
    for (let i = 0; ; i++) {
      const info = await ctx.jsm.consumers.info(streams.OBS.name, consumer);
      if (info.num_pending + info.num_ack_pending === 0) break;
      if (i > 300) throw new Error(`consumer ${consumer} still has ${info.num_ack_pending} unacknowledged`);
      await sleep(100);
    }
    const commitSum = await sumOf(collectors, 'fb_cloud_ingest_commit_seconds_sum');
    const commitCount = await sumOf(collectors, 'fb_cloud_ingest_commit_seconds_count');
    const rounds = await sumOf(collectors, 'fb_cloud_ingest_rounds_total');
    const { rows } = await ctx.pool.query<{ n: string; d: string }>(
      'SELECT (SELECT count(*) FROM observations) AS n, (SELECT count(*) FROM dead_letters) AS d',
    );
    if (Number(rows[0]?.n) !== filled.readings || Number(rows[0]?.d) !== 0)
      throw new Error(`stored ${rows[0]?.n} of ${filled.readings} readings, ${rows[0]?.d} dead letters`);
    const rate = (filled.readings - head) / seconds;
    const ranges = await ctx.pool.query<{ n: string }>('SELECT count(*) AS n FROM edge_seq_ranges');
    const bytes = await tableBytes(ctx.pool);
    return {
      shape,
      collectors: k,
      readings: filled.readings,
      messages: filled.messages,
      head_readings: head,
      seconds: Math.round(seconds * 100) / 100,
      obs_per_s: Math.round(rate),
      msgs_per_s: Math.round((rate * filled.messages) / filled.readings),
      payload_bytes_per_msg: Math.round(filled.payloadBytes / filled.messages),
      payload_bytes_per_reading: Math.round((filled.payloadBytes / filled.readings) * 100) / 100,
      stream_bytes_per_msg: Math.round(streamBytes / filled.messages),
      pg_bytes_per_row: Math.round(bytes.observations / filled.readings),
      pg_bookkeeping_bytes_per_msg: Math.round(bytes.bookkeeping / filled.messages),
      commit_ms_mean: Math.round((commitSum / Math.max(1, commitCount)) * 10_000) / 10,
      rounds,
      pg_commits_per_s: Math.round(commits / seconds),
      seq_range_rows: Number(ranges.rows[0]?.n ?? 0),
      cpu_cores: cores,
      cpu_us_per_reading: Object.fromEntries(
        ['collectors', 'postgres', 'nats'].map((g) => [
          g,
          Math.round((((cores[g] ?? 0) * seconds) / (filled.readings - head)) * 1e7) / 10,
        ]),
      ),
      loadavg_after: loadavg().map((l) => Math.round(l * 100) / 100),
    };
  } finally {
    await Promise.all(collectors.map((c) => c.stop()));
    await ctx.jsm.consumers.delete(streams.OBS.name, consumer).catch(() => {});
  }
}

/** Raw COPY of the backlog's rows into the same table: the database's own limit on this box, same run. */
async function copyPeer(ctx: Ctx, readings: number): Promise<number> {
  await reset(ctx);
  const text: string[] = [];
  for (const m of backlogMessages(readings, 'copy'))
    for (const o of m.observations) text.push(observationCopyLine(o));
  await ctx.pool.query('SELECT fb_ensure_observation_partitions($1, $1)', [new Date(T0)]);
  const client = await ctx.pool.connect();
  try {
    const t = performance.now();
    await copyLines(client, `COPY observations (${INGEST_COLUMNS}) FROM STDIN`, text);
    return Math.round(readings / ((performance.now() - t) / 1000));
  } finally {
    client.release();
  }
}

/** Median readings/s and messages/s of each shape and collector count over its repeats. */
function summarise(runs: readonly RunResult[]) {
  const groups = new Map<string, RunResult[]>();
  for (const r of runs)
    groups.set(`${r.shape}/${r.collectors}`, [...(groups.get(`${r.shape}/${r.collectors}`) ?? []), r]);
  return [...groups.values()].map((g) => {
    const sorted = [...g].sort((a, b) => a.obs_per_s - b.obs_per_s);
    const mid = sorted[Math.floor(sorted.length / 2)] as RunResult;
    return {
      shape: mid.shape,
      collectors: mid.collectors,
      runs: g.length,
      obs_per_s_median: mid.obs_per_s,
      msgs_per_s_median: mid.msgs_per_s,
      obs_per_s_all: g.map((r) => r.obs_per_s),
      cpu_us_per_reading_median: Object.fromEntries(
        ['collectors', 'postgres', 'nats'].map((k) => {
          const xs = g.map((r) => r.cpu_us_per_reading[k] ?? 0).sort((a, b) => a - b);
          return [k, xs[Math.floor(xs.length / 2)]];
        }),
      ),
    };
  });
}

export async function runCloudScaleBench(argv: string[]): Promise<void> {
  if (argv.includes('--help')) {
    process.stdout.write(HELP);
    return;
  }
  const flags = parseFlags(argv);
  const loadBefore = loadavg().map((l) => Math.round(l * 100) / 100);
  const dir = tempDir('fieldbeam-bench-scale-');
  const [nats, postgres] = await Promise.all([startServers(flags.replicas), startPostgres()]);
  const pool = new pg.Pool({ connectionString: postgres.url, max: 2 });
  pool.on('error', () => {}); // idle connections dropped when Postgres stops at the end
  let nc: NatsConnection | undefined;
  try {
    await migrate(pool);
    const admin = new pg.Client(postgres.superuserUrl);
    await admin.connect();
    const dataDir = (
      await admin
        .query<{ d: string }>("SELECT current_setting('data_directory') AS d")
        .finally(() => admin.end())
    ).rows[0]?.d;
    const postmaster = Number(readFileSync(join(dataDir ?? '', 'postmaster.pid'), 'utf8').split('\n')[0]);
    nc = await connect({ servers: nats.url.split(',') });
    const jsm = await jetstreamManager(nc);
    await ensureStreams(jsm, streamSpecsAt(flags.replicas));
    const ctx: Ctx = {
      nats,
      nc,
      jsm,
      postgres,
      pool,
      postmaster,
      dir: dir.path,
      extraEnv: flags.replicas === 1 ? {} : { FB_STREAM_REPLICAS: String(flags.replicas) },
    };
    const runs: RunResult[] = [];
    let copy: number | undefined;
    for (const shape of flags.shapes) {
      for (let rep = 0; rep < flags.repeat; rep++) {
        for (const k of flags.collectors) {
          process.stdout.write(`${shape}: ${k} collector(s), replicas ${flags.replicas}...\n`);
          const r = await runOnce(ctx, shape, k, flags);
          process.stdout.write(`  ${r.obs_per_s} readings/s, ${r.msgs_per_s} messages/s in ${r.seconds} s\n`);
          runs.push(r);
        }
      }
      if (shape === 'backlog') copy = await copyPeer(ctx, flags.readings);
    }
    const entry = {
      measuredAt: new Date().toISOString(),
      command: `pnpm bench cloud ${argv.join(' ')}`,
      machine: {
        cpus: cpus().length,
        cpu: cpus()[0]?.model,
        memGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        loadavgBefore: loadBefore,
        loadavgAfter: loadavg().map((l) => Math.round(l * 100) / 100),
      },
      nats: nats.describe,
      replicas: flags.replicas,
      // As the collectors left it: they apply FB_STREAM_REPLICAS at start.
      obs_stream_replicas: (await jsm.streams.info(streams.OBS.name)).config.num_replicas,
      ingest_fetch: 64,
      ingest_parallel: 2,
      ingest_decode_threads: 2,
      copy_limit_obs_per_s: copy ?? null,
      live_edges: flags.liveEdges,
      summary: summarise(runs),
      runs,
    };
    const file = join(results, 'cloud-scale.json');
    const previous = existsSync(file)
      ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>)
      : {};
    const out = { ...previous, suite: 'cloud-scale', [`replicas_${flags.replicas}`]: entry };
    mkdirSync(results, { recursive: true });
    writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
    const table = [
      ['shape', 'collectors', 'readings/s', 'messages/s', 'collector cores', 'postgres', 'nats', 'other'],
      ...runs.map((r) => [
        r.shape,
        String(r.collectors),
        String(r.obs_per_s),
        String(r.msgs_per_s),
        String(r.cpu_cores.collectors),
        String(r.cpu_cores.postgres),
        String(r.cpu_cores.nats),
        String(r.cpu_cores.other),
      ]),
    ];
    process.stdout.write(
      `\n${formatTable(table)}\nCOPY peer (backlog rows): ${copy ?? '-'} readings/s\nwritten to bench/results/cloud-scale.json (replicas_${flags.replicas})\n`,
    );
  } finally {
    await nc?.close();
    await pool.end();
    await Promise.all([nats.close(), postgres.close()]);
    dir.remove();
  }
}
