import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addEdge, collectorSeed } from '@fieldbeam/cloud';
import { streams } from '@fieldbeam/protocol';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, nkeyAuthenticator } from '@nats-io/transport-node';
import pg from 'pg';
import {
  type CollectorProcess,
  type Crash,
  createNetnsLink,
  type EdgeAgentProcess,
  type LoadProcess,
  type LoadProcessResult,
  type NatsCluster,
  type NatsServer,
  type NetnsLink,
  startCollectorProcess,
  startEdgeAgentProcess,
  startLoadProcess,
  startNatsCluster,
  startNatsServer,
  startNatsServerAt,
  startPostgres,
  startTcpProxy,
  type TcpProxy,
  type TempDir,
  type TestPostgres,
  tempDir,
} from '../harness/index.js';
import { onCleanup } from './cleanup.js';

/** How an edge reaches nats-server: straight, through the loopback TCP proxy, or from a network namespace. */
export type Uplink = 'direct' | 'proxy' | 'netns';

export interface EdgeSpec {
  /** Short name, unique in the system ("a", "b"). */
  name: string;
  uplink: Uplink;
  /** Readings per second from this edge's publisher. */
  rate: number;
  /** Planned length of the load; bounds its count (rate x (seconds + 60)) and its time. */
  seconds: number;
  buffer?: { capacity_bytes: number; policy: 'block' | 'drop_oldest' };
  /** The publisher's window of unacknowledged messages. */
  maxInFlight?: number;
  ackTimeoutMs?: number;
  /** Sensors besides the publisher's (agent config `sensors[]` entries). */
  sensors?: Record<string, unknown>[];
  /** The agent's `forward` settings (batch sizes), when a scenario depends on them. */
  forward?: Record<string, unknown>;
}

export interface SystemSpec {
  /** Scenario name; a random suffix makes edge ids and stations unique to the run. */
  scenario: string;
  collectors: number;
  edges: EdgeSpec[];
  /** What the publishers send (default `json`, with sensor time). */
  payload?: 'json' | 'number';
  /**
   * `nkey`: every identity is registered as `fieldbeam-cloud edge add` does it, and nats-server runs
   * with the nkey-only authorization that command writes (the collector reads its key from the
   * identity folder). Default: no authentication.
   */
  auth?: 'nkey';
  /** Identities registered beside the edges but running no agent (a hostile edge drives its own client). */
  identities?: string[];
  /**
   * nats-server as a JetStream cluster of `nodes` (deploy/nats/cluster-node.conf, startNatsCluster)
   * with every stream at `replicas` (the collectors' FB_STREAM_REPLICAS); edges and collectors are
   * given every node. `partitionable`: the last node runs in a network namespace, so that it can be
   * cut off (`sys.cluster.nodes[n - 1].partition()`).
   */
  cluster?: { nodes: number; replicas: number; partitionable?: boolean };
  /**
   * Datasets YAML every collector builds (besides ingesting), their objects in one shared folder
   * (FB_OBJECT_DIR); builds are polled every 100 ms with a 2 s lease, so a dead builder's window is
   * taken over soon.
   */
  datasets?: string;
  log?: (line: string) => void;
}

/** A registered NATS identity: edge id and its nkey seed. */
export interface Identity {
  id: string;
  seed: string;
}

export interface FaultEdge {
  readonly spec: EdgeSpec;
  /** Edge id (also the NATS subject token). */
  readonly id: string;
  /** The station its publisher reports as: every reading of this edge is (station, seq). */
  readonly station: string;
  readonly agent: EdgeAgentProcess;
  readonly proxy: TcpProxy | undefined;
  load: LoadProcess | undefined;
  /** Latest buffer depth seen (readings), and the drop counter (drop_oldest). */
  depth: number;
  dropped: number;
}

/** Per publisher: what was acknowledged, what Postgres holds. */
export interface Tally {
  station: string;
  sent: number;
  acked: number;
  /** Distinct readings of this station in Postgres. */
  stored: number;
  /** Acknowledged and not in Postgres. */
  lost: number;
  /** Readings with more than one row. */
  duplicated: number;
  /** Stored although their PUBACK never arrived (allowed: at-least-once, e.g. a crash before the PUBACK). */
  storedUnacked: number;
  /** Rows whose value is no reading this run sent. */
  unknownRows: number;
  lostExamples: number[];
  duplicatedExamples: number[];
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * The agent's sensor for `load/<station>/v`. `json` payloads `{"t": epoch ms, "v": seq}` carry sensor
 * time, so a reading the sensor sends again (QoS 1 after a lost PUBACK) keeps its id; `number`
 * payloads are the bare seq and get the agent's receipt time.
 */
const sensorsFor = (payload: 'json' | 'number') => [
  {
    topic: 'load/+station/v',
    decoder:
      payload === 'json'
        ? { type: 'json', time: 't', fields: { v: { variable: 'x:seq', unit: '1' } } }
        : { type: 'number', variable: 'x:seq', unit: '1' },
  },
];

/**
 * One complete Fieldbeam deployment as separate OS processes: Postgres, nats-server (JetStream, file
 * store), N collectors sharing the durable ingest consumer, and edge agents each fed by its own MQTT
 * QoS 1 publisher process. Faults are applied through the methods below; `check` compares what the
 * publishers had acknowledged with the rows in Postgres.
 */
export class FaultSystem {
  readonly run: string;
  readonly log: (line: string) => void;
  readonly t0 = Date.now();
  collectors: CollectorProcess[] = [];
  edges: FaultEdge[] = [];
  nats!: NatsServer;
  /** The cluster, when the spec asks for one (`nats` then stands for all of it: url, close). */
  cluster: NatsCluster | undefined;
  postgres!: TestPostgres;
  pool!: pg.Pool;
  netns: NetnsLink | undefined;
  /** Highest total buffer depth (readings, all edges) seen since start / since `resetWindowPeak`. */
  peak = 0;
  windowPeak = 0;
  /** nkey mode: the identity folder and each identity by short name (edges and extra identities). */
  identityDir: string | undefined;
  readonly identities = new Map<string, Identity>();
  /** Components that exited by themselves (each is restarted after 2 s, as systemd's Restart=on-failure would). */
  readonly crashes: string[] = [];
  private closing = false;
  private dir!: TempDir;
  private sampler: NodeJS.Timeout | undefined;
  private sampling = false;
  private nc: NatsConnection | undefined;
  private closed: Promise<void> | undefined;
  private unregister: () => void = () => {};

  private constructor(readonly spec: SystemSpec) {
    this.run = `${spec.scenario}-${randomBytes(2).toString('hex')}`;
    const log = spec.log ?? ((l: string) => process.stderr.write(`${l}\n`));
    this.log = (line) => log(`[${this.run} +${((Date.now() - this.t0) / 1000).toFixed(1)}s] ${line}`);
  }

  static async start(spec: SystemSpec): Promise<FaultSystem> {
    const sys = new FaultSystem(spec);
    sys.unregister = onCleanup(() => sys.close());
    try {
      await sys.boot();
    } catch (err) {
      await sys.close();
      throw err;
    }
    return sys;
  }

  private async boot() {
    const { spec } = this;
    this.dir = tempDir('fieldbeam-faults-');
    if (spec.edges.some((e) => e.uplink === 'netns') || spec.cluster?.partitionable) {
      this.netns = createNetnsLink();
      this.log(`namespace ${this.netns.name}: ${this.netns.hostAddr} <-> ${this.netns.nsAddr}`);
    }
    let extraConfig: string | undefined;
    if (spec.auth === 'nkey') {
      this.identityDir = join(this.dir.path, 'identity');
      let authorization = '';
      for (const name of [...spec.edges.map((e) => e.name), ...(spec.identities ?? [])]) {
        const added = addEdge(this.identityDir, `${this.run}-${name}`);
        this.identities.set(name, { id: added.id, seed: added.seed });
        authorization = added.files.authorization;
      }
      // The file as written, verbatim: nats-server resolves `include` against its own config folder.
      extraConfig = readFileSync(authorization, 'utf8');
    }
    const natsOpts = extraConfig ? { extraConfig } : {};
    const [nats, postgres] = await Promise.all([
      spec.cluster
        ? this.startCluster(spec.cluster, natsOpts)
        : this.netns
          ? startNatsServerAt(this.netns.hostAddr, natsOpts)
          : startNatsServer(natsOpts),
      startPostgres(),
    ]);
    this.nats = nats;
    let datasetEnv: Record<string, string> = {};
    if (spec.datasets) {
      const file = join(this.dir.path, 'datasets.yaml');
      writeFileSync(file, spec.datasets);
      datasetEnv = {
        FB_DATASETS_FILE: file,
        FB_OBJECT_DIR: join(this.dir.path, 'objects'),
        FB_BUILD_POLL_MS: '100',
        FB_BUILD_LEASE_MS: '2000',
      };
    }
    this.postgres = postgres;
    this.pool = new pg.Pool({ connectionString: postgres.url, max: 4, connectionTimeoutMillis: 5000 });
    this.pool.on('error', () => {});
    // Collectors first: they create the streams the edges publish to.
    for (let i = 0; i < spec.collectors; i++) {
      const name = `${this.run}-c${i + 1}`;
      const holder: { c?: CollectorProcess } = {};
      holder.c = await startCollectorProcess({
        name,
        natsUrl: nats.url,
        databaseUrl: postgres.url,
        dataDir: join(this.dir.path, `collector-${i + 1}`),
        consumer: 'ingest',
        env: {
          ...(this.identityDir ? { FB_IDENTITY_DIR: this.identityDir } : {}),
          ...(spec.cluster ? { FB_STREAM_REPLICAS: String(spec.cluster.replicas) } : {}),
          ...datasetEnv,
        },
        onCrash: this.supervise(`collector ${name}`, () => holder.c?.start()),
      });
      this.collectors.push(holder.c);
    }
    for (const e of spec.edges) {
      const id = `${this.run}-${e.name}`;
      const natsHost = this.netns?.hostAddr ?? '127.0.0.1';
      const proxy = e.uplink === 'proxy' ? await startTcpProxy(nats.port, natsHost) : undefined;
      const server = proxy ? `nats://127.0.0.1:${proxy.port}` : nats.url;
      try {
        const holder: { a?: EdgeAgentProcess } = {};
        const agent = await startEdgeAgentProcess({
          onCrash: this.supervise(`edge ${id}`, () => holder.a?.start()),
          dir: this.dir.path,
          netns: e.uplink === 'netns' ? this.netns : undefined,
          config: {
            edge: id,
            nats: {
              servers: this.cluster && !proxy ? this.cluster.urls : [server],
              ack_timeout_ms: e.ackTimeoutMs ?? 5000,
              ...(this.identities.has(e.name) ? { nkey_seed: this.identities.get(e.name)?.seed } : {}),
            },
            ...(e.buffer ? { buffer: e.buffer } : {}),
            ...(e.forward ? { forward: e.forward } : {}),
            sensors: [...sensorsFor(spec.payload ?? 'json'), ...(e.sensors ?? [])],
          },
        });
        holder.a = agent;
        this.edges.push({
          spec: e,
          id,
          station: `${id}-s`,
          agent,
          proxy,
          load: undefined,
          depth: 0,
          dropped: 0,
        });
      } catch (err) {
        await proxy?.close();
        throw err;
      }
    }
    this.sampler = setInterval(() => void this.sample(), 250);
    this.log(
      `up: postgres, ${this.nats.url}, ${spec.collectors} collector(s), edges ${this.edges
        .map((e) => `${e.id} (${e.spec.uplink})`)
        .join(', ')}`,
    );
  }

  /**
   * The cluster, and a stand-in for `nats` whose url is every node's (comma-joined, as NATS_URL takes
   * it); its node-level faults are the cluster's (`sys.cluster.nodes`).
   */
  private async startCluster(
    c: NonNullable<SystemSpec['cluster']>,
    natsOpts: { extraConfig?: string },
  ): Promise<NatsServer> {
    const cluster = await startNatsCluster({
      nodes: c.nodes,
      ...natsOpts,
      ...(c.partitionable && this.netns ? { netns: { link: this.netns, node: c.nodes - 1 } } : {}),
    });
    this.cluster = cluster;
    const whole = () => Promise.reject(new Error('a cluster: stop, kill or restart its nodes'));
    return {
      url: cluster.url,
      port: cluster.nodes[0]?.port ?? 0,
      storeDir: '',
      stop: whole,
      kill: whole,
      restart: whole,
      close: () => cluster.stop(),
    };
  }

  /** Every NATS server URL (the cluster's nodes, or the one server). */
  get natsUrls(): string[] {
    return this.cluster ? this.cluster.urls : [this.nats.url];
  }

  /** Records a crash, and restarts the component 2 s later as its systemd unit would. */
  private supervise(what: string, restart: () => Promise<void> | undefined) {
    return (crash: Crash) => {
      const lines = crash.tail.split('\n').filter((l) => l.trim());
      const cause =
        lines.find((l) => /\b[A-Za-z]*Error\b:/.test(l)) ?? lines[lines.length - 1] ?? '(no output)';
      const line = `${what} crashed (exit ${crash.code ?? crash.signal}): ${cause.trim().slice(0, 300)}`;
      this.crashes.push(line);
      this.log(`${line}; restarting it in 2 s (as systemd Restart=on-failure)`);
      setTimeout(() => {
        if (this.closing) return;
        Promise.resolve(restart()).catch((err: Error) =>
          this.log(`restart of ${what} failed: ${err.message}`),
        );
      }, 2000);
    };
  }

  private async sample() {
    if (this.sampling) return;
    this.sampling = true;
    try {
      let total = 0;
      await Promise.all(
        this.edges.map(async (e) => {
          if (!e.agent.running) return;
          const s = await e.agent.status(1000);
          if (s) {
            e.depth = s.buffer.depth;
            e.dropped = s.buffer.dropped;
          }
        }),
      );
      for (const e of this.edges) total += e.depth;
      this.peak = Math.max(this.peak, total);
      this.windowPeak = Math.max(this.windowPeak, total);
    } finally {
      this.sampling = false;
    }
  }

  resetWindowPeak(): number {
    const p = this.windowPeak;
    this.windowPeak = 0;
    return p;
  }

  /** Starts every edge's publisher (its own process). */
  async startLoads(): Promise<void> {
    await Promise.all(
      this.edges.map(async (e) => {
        e.load = await startLoadProcess({
          url: e.agent.mqttUrl,
          clientId: `fb-faults-${e.id}`,
          station: e.station,
          topicPrefix: 'load',
          format: this.spec.payload ?? 'json',
          rate: e.spec.rate,
          maxMessages: Math.ceil(e.spec.rate * (e.spec.seconds + 60)),
          maxInFlight: e.spec.maxInFlight ?? 1000,
          maxSeconds: e.spec.seconds + 120,
        });
      }),
    );
  }

  /** Total acknowledged so far (latest progress of every publisher). */
  get acked(): number {
    return this.edges.reduce((s, e) => s + (e.load?.progress.acked ?? 0), 0);
  }

  // ---- faults -------------------------------------------------------------------------------

  async cutUplink(e: FaultEdge, how: 'refuse' | 'blackhole'): Promise<void> {
    if (e.spec.uplink === 'proxy' && e.proxy) await e.proxy.setMode(how);
    else if (e.spec.uplink === 'netns' && this.netns && how === 'blackhole')
      this.netns.blackhole(this.nats.port);
    else throw new Error(`edge ${e.id} (${e.spec.uplink}) cannot be cut with ${how}`);
  }

  async restoreUplink(e: FaultEdge): Promise<void> {
    if (e.proxy) await e.proxy.setMode('pass');
    if (e.spec.uplink === 'netns') this.netns?.restore();
  }

  // ---- measurement ----------------------------------------------------------------------------

  private async count(station: string, until: number): Promise<number | undefined> {
    try {
      const r = await this.pool.query<{ n: string }>(
        'SELECT count(*) AS n FROM observations WHERE station = $1 AND time <= $2',
        [station, new Date(until)],
      );
      return Number(r.rows[0]?.n ?? 0);
    } catch {
      return undefined;
    }
  }

  /**
   * Seconds from `since` (the moment the fault was cleared) until every reading acknowledged before
   * now is in Postgres (less what a drop_oldest edge dropped); null after `timeoutMs`.
   */
  async recovery(since: number, timeoutMs = 300_000): Promise<number | null> {
    const snaps = await Promise.all(this.edges.map((e) => e.load?.snapshot()));
    const deadline = Date.now() + timeoutMs;
    const done = new Set<number>();
    let nextReport = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (Date.now() > nextReport) {
        // A slow recovery says where the readings are: still in an edge buffer, or in JetStream.
        nextReport = Date.now() + 15_000;
        const c = await this.consumerState();
        const missing = await Promise.all(
          this.edges.map(async (e, i) => {
            const n = await this.count(e.station, snaps[i]?.time ?? 0);
            return `${e.spec.name}: ${n ?? '?'}/${snaps[i]?.acked} stored, buffer ${e.depth}`;
          }),
        );
        this.log(
          `recovering for ${((Date.now() - since) / 1000).toFixed(0)} s: ${missing.join('; ')}; ingest consumer pending ${c.pending}, unacked ${c.ackPending}, redelivered ${c.redelivered}`,
        );
      }
      for (const [i, e] of this.edges.entries()) {
        const s = snaps[i];
        if (done.has(i) || !s) {
          done.add(i);
          continue;
        }
        const allowance = e.spec.buffer?.policy === 'drop_oldest' ? e.dropped : 0;
        const n = await this.count(e.station, s.time);
        if (n !== undefined && n >= s.acked - allowance) done.add(i);
      }
      if (done.size === this.edges.length) return (Date.now() - since) / 1000;
      await sleep(250);
    }
    return null;
  }

  /** Stops every publisher; waits for their outstanding PUBACKs. */
  async stopLoads(drainMs = 60_000): Promise<Map<string, LoadProcessResult>> {
    const out = new Map<string, LoadProcessResult>();
    await Promise.all(
      this.edges.map(async (e) => {
        if (e.load) out.set(e.station, await e.load.stop(drainMs));
      }),
    );
    return out;
  }

  /** A NATS connection of the test's own (with the collector's key when authorization is on). */
  async client(): Promise<NatsConnection> {
    await this.jsm();
    if (!this.nc) throw new Error('no NATS connection');
    return this.nc;
  }

  private async jsm() {
    this.nc ??= await connect({
      servers: this.natsUrls,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // On a cluster node cut off by a partition, move to another like the collector does.
      pingInterval: 10_000,
      maxPingOut: 3,
      // With authorization on, the test looks at the consumer as the collector does, with its key.
      ...(this.identityDir
        ? { authenticator: nkeyAuthenticator(new TextEncoder().encode(collectorSeed(this.identityDir))) }
        : {}),
    });
    return jetstreamManager(this.nc);
  }

  /** The shared ingest consumer: batches not yet delivered, delivered and not acknowledged, redelivered. */
  async consumerState(jsm?: Awaited<ReturnType<FaultSystem['jsm']>>) {
    try {
      const info = await (jsm ?? (await this.jsm())).consumers.info(streams.OBS.name, 'ingest');
      return {
        pending: info.num_pending,
        ackPending: info.num_ack_pending,
        redelivered: info.num_redelivered,
      };
    } catch {
      return { pending: undefined, ackPending: undefined, redelivered: undefined };
    }
  }

  /**
   * Waits until every edge buffer is empty and the ingest consumer has nothing pending or unacked,
   * i.e. everything the system will ever store is stored. Returns a note when it timed out.
   */
  async settle(timeoutMs = 300_000): Promise<string | undefined> {
    const jsm = await this.jsm();
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      const depths = await Promise.all(this.edges.map(async (e) => (await e.agent.status())?.buffer.depth));
      const { pending, ackPending } = await this.consumerState(jsm);
      last = `buffers ${depths.join('/')}, consumer pending ${pending} unacked ${ackPending}`;
      if (depths.every((d) => d === 0) && pending === 0 && ackPending === 0) return undefined;
      await sleep(250);
    }
    return `did not settle in ${timeoutMs / 1000} s: ${last}`;
  }

  /** Reads, per publisher, how many rows Postgres holds for each of its readings (see `tally`). */
  async check(
    results: Map<string, LoadProcessResult>,
  ): Promise<Map<string, { result: LoadProcessResult; rows: Uint32Array; unknownRows: number }>> {
    const out = new Map<string, { result: LoadProcessResult; rows: Uint32Array; unknownRows: number }>();
    for (const e of this.edges) {
      const result = results.get(e.station);
      if (!result) continue;
      const rows = new Uint32Array(result.sent);
      let unknownRows = 0;
      const r = await this.pool.query<{ value: number | null; n: number }>(
        'SELECT value, count(*)::int AS n FROM observations WHERE station = $1 GROUP BY value',
        [e.station],
      );
      for (const { value, n } of r.rows) {
        if (value !== null && Number.isInteger(value) && value >= 0 && value < result.sent) rows[value] = n;
        else unknownRows += n;
      }
      out.set(e.station, { result, rows, unknownRows });
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed ??= (async () => {
      this.closing = true;
      this.unregister();
      if (this.sampler) clearInterval(this.sampler);
      const quietly = async (what: string, fn: () => Promise<unknown> | unknown) => {
        try {
          await fn();
        } catch (err) {
          this.log(`cleanup of ${what} failed: ${(err as Error).message}`);
        }
      };
      for (const e of this.edges) await quietly(`load ${e.station}`, () => e.load?.kill());
      await Promise.all(this.edges.map((e) => quietly(`edge ${e.id}`, () => e.agent.kill())));
      await Promise.all(this.collectors.map((c) => quietly(`collector ${c.name}`, () => c.kill())));
      for (const e of this.edges) await quietly(`proxy of ${e.id}`, () => e.proxy?.close());
      await quietly('nats connection', () => this.nc?.close());
      await quietly('nats-server', () => this.nats?.close());
      await quietly('pool', () => this.pool?.end());
      await quietly('postgres', () => this.postgres?.close());
      await quietly('namespace', () => this.netns?.close());
      await quietly('folder', () => this.dir?.remove());
    })();
    return this.closed;
  }
}

/** Tallies readings [from, to) of one publisher against the row counts found in Postgres. */
export function tally(
  station: string,
  result: LoadProcessResult,
  rows: Uint32Array,
  from = 0,
  to = result.sent,
  unknownRows = 0,
): Tally {
  const t: Tally = {
    station,
    sent: Math.max(0, to - from),
    acked: 0,
    stored: 0,
    lost: 0,
    duplicated: 0,
    storedUnacked: 0,
    unknownRows,
    lostExamples: [],
    duplicatedExamples: [],
  };
  for (let seq = from; seq < to; seq++) {
    const acked = result.ackedBits[seq] === 1;
    const n = rows[seq] ?? 0;
    if (acked) t.acked++;
    if (n > 0) t.stored++;
    if (acked && n === 0) {
      t.lost++;
      if (t.lostExamples.length < 10) t.lostExamples.push(seq);
    }
    if (!acked && n > 0) t.storedUnacked++;
    if (n > 1) {
      t.duplicated++;
      if (t.duplicatedExamples.length < 10) t.duplicatedExamples.push(seq);
    }
  }
  return t;
}
