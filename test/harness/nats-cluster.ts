import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NetnsLink } from './netns.js';
import { freePort } from './ports.js';
import { type Spawned, spawnProcess, waitForPort } from './process.js';
import { repoRoot } from './repo-root.js';
import { type TempDir, tempDir } from './temp-dir.js';

/** One nats-server of a `NatsCluster`. */
export interface NatsClusterNode {
  /** `server_name` (n1, n2, n3): what `leaderOf` returns. */
  readonly name: string;
  /** Client URL of this node alone. */
  readonly url: string;
  readonly port: number;
  readonly clusterPort: number;
  /** Monitoring port (/healthz, /jsz), on the node's listen address. */
  readonly httpPort: number;
  readonly storeDir: string;
  /** Pid of the running process, or -1 when stopped. */
  readonly pid: number;
  readonly running: boolean;
  /** Signals the process (default SIGKILL: a crash, the store is kept) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM (lame-duck, graceful), keeping the store. */
  stop(): Promise<void>;
  /** Starts it again with the same ports and store; resolves once its client port accepts connections. */
  start(): Promise<void>;
  /**
   * Only for the node started inside `netns`: drops every packet between the namespace and the host
   * (routes to the other nodes and clients alike) until `heal()`.
   */
  partition(): void;
  heal(): void;
}

/**
 * A JetStream cluster of nats-server processes on loopback ports, each with its own store folder and
 * full-mesh routes. Every node's config is deploy/nats/cluster-node.conf with the node-specific lines
 * (name, ports, store, routes) replaced, so the shipped config is the one under test; `extraConfig`
 * (accounts, authorization: e.g. the file `fieldbeam-cloud edge add` writes) becomes each node's
 * `identity/nats-authorization.conf`, which that config includes.
 *
 * `url` is every node's URL comma-joined, the form edges and collectors take. `leaderOf(stream)` is
 * the name of the node leading that stream (read from the monitoring endpoint, so it needs no
 * credentials). With `netns`, the node at `netns.node` (0-based) runs inside that namespace on its
 * address, and `nodes[i].partition()` / `heal()` cut it off from the rest and join it again.
 */
export interface NatsCluster {
  readonly urls: string[];
  readonly url: string;
  readonly nodes: NatsClusterNode[];
  leaderOf(stream: string, timeoutMs?: number): Promise<string>;
  /** Resolves once every running node reports healthy (JetStream current) on /healthz. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes the folders. */
  stop(): Promise<void>;
}

/** The file every node's config is made from. */
export const clusterNodeTemplate = () => join(repoRoot(), 'deploy', 'nats', 'cluster-node.conf');

interface NodeLayout {
  name: string;
  host: string;
  port: number;
  clusterListen: string;
  clusterPort: number;
  httpPort: number;
  storeDir: string;
  routes: string[];
}

/**
 * Makes one node's config from the deployment template. A line the template no longer has is an
 * error: the template and this test must change together.
 */
export function clusterNodeConfig(template: string, n: NodeLayout): string {
  const replacements: [string, RegExp, string][] = [
    ['server_name', /^server_name: .*$/m, `server_name: ${n.name}`],
    ['listen', /^listen: .*$/m, `listen: ${n.host}:${n.port}`],
    ['http', /^http: .*$/m, `http: ${n.host}:${n.httpPort}`],
    ['store_dir', /^(\s*)store_dir: .*$/m, `$1store_dir: "${n.storeDir}"`],
    ['max_file_store', /^(\s*)max_file_store: .*$/m, '$1max_file_store: 4GB'],
    ['cluster listen', /^(\s+)listen: .*6222.*$/m, `$1listen: ${n.clusterListen}:${n.clusterPort}`],
    [
      'routes',
      /^(\s+)routes: \[[^\]]*\]/m,
      `$1routes: [\n${n.routes.map((r) => `    nats-route://${r}`).join('\n')}\n  ]`,
    ],
  ];
  let conf = template;
  for (const [what, re, by] of replacements) {
    if (!re.test(conf)) throw new Error(`${clusterNodeTemplate()} has no ${what} line to set`);
    conf = conf.replace(re, by);
  }
  if (!/^include \.\/identity\/nats-authorization\.conf$/m.test(conf))
    throw new Error(`${clusterNodeTemplate()} no longer includes ./identity/nats-authorization.conf`);
  return conf;
}

const getJson = async (url: string): Promise<{ status: number; body: unknown }> => {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) };
  } catch {
    return { status: res.status, body: text };
  }
};

interface JszStream {
  name: string;
  cluster?: { leader?: string };
}
interface Jsz {
  account_details?: { stream_detail?: JszStream[] }[];
}

export async function startNatsCluster(
  opts: {
    nodes?: number;
    extraConfig?: string;
    binary?: string;
    netns?: { link: NetnsLink; node: number };
  } = {},
): Promise<NatsCluster> {
  const count = opts.nodes ?? 3;
  if (count < 1) throw new Error('a cluster needs at least one node');
  const dir: TempDir = tempDir('fieldbeam-nats-cluster-');
  const template = readFileSync(clusterNodeTemplate(), 'utf8');
  const bin = opts.binary ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  const link = opts.netns?.link;
  const inNs = (i: number) => link !== undefined && opts.netns?.node === i;
  // Host nodes take route connections from the namespace too (at the host end of the pair).
  const clusterListen = (i: number) => (inNs(i) ? (link?.nsAddr ?? '') : link ? '0.0.0.0' : '127.0.0.1');
  const layouts: NodeLayout[] = [];
  for (let i = 0; i < count; i++) {
    layouts.push({
      name: `n${i + 1}`,
      host: inNs(i) ? (link?.nsAddr ?? '') : '127.0.0.1',
      port: await freePort(),
      clusterListen: clusterListen(i),
      clusterPort: await freePort(),
      httpPort: await freePort(),
      storeDir: join(dir.path, `n${i + 1}`, 'jetstream'),
      routes: [],
    });
  }
  for (const [i, n] of layouts.entries()) {
    // The address at which node i reaches each node: the namespace's across the pair, loopback otherwise.
    const reach = (j: number) =>
      inNs(j) ? (link?.nsAddr ?? '') : inNs(i) ? (link?.hostAddr ?? '') : '127.0.0.1';
    n.routes = layouts.filter((_, j) => j !== i).map((m) => `${reach(layouts.indexOf(m))}:${m.clusterPort}`);
    const nodeDir = join(dir.path, n.name);
    mkdirSync(join(nodeDir, 'identity'), { recursive: true });
    writeFileSync(join(nodeDir, 'nats.conf'), clusterNodeConfig(template, n));
    writeFileSync(join(nodeDir, 'identity', 'nats-authorization.conf'), `${opts.extraConfig ?? ''}\n`);
  }

  const nodes: NatsClusterNode[] = layouts.map((n, i) => {
    let proc: Spawned | undefined;
    let running = false;
    let partitioned = false;
    const conf = join(dir.path, n.name, 'nats.conf');
    const table = 'fb_partition';
    const node: NatsClusterNode = {
      name: n.name,
      url: `nats://${n.host}:${n.port}`,
      port: n.port,
      clusterPort: n.clusterPort,
      httpPort: n.httpPort,
      storeDir: n.storeDir,
      get pid() {
        return running && proc ? proc.pid : -1;
      },
      get running() {
        return running;
      },
      async start() {
        if (running) return;
        const [cmd, args] = inNs(i) && link ? link.wrap(bin, ['-c', conf]) : [bin, ['-c', conf]];
        proc = spawnProcess(cmd, args);
        running = true;
        proc.child.once('exit', () => {
          running = false;
        });
        try {
          await waitForPort(n.port, 20_000, n.host);
        } catch (err) {
          await proc.kill();
          throw new Error(`nats-server ${n.name} did not start: ${(err as Error).message}\n${proc.output()}`);
        }
      },
      async kill(signal: NodeJS.Signals = 'SIGKILL') {
        if (!proc || !running) return;
        const exited = new Promise<void>((r) => proc?.child.once('exit', () => r()));
        proc.child.kill(signal);
        await exited;
      },
      async stop() {
        await proc?.stop(30_000);
      },
      partition() {
        if (!inNs(i) || !link) throw new Error(`node ${n.name} does not run in a namespace`);
        if (partitioned) return;
        execFileSync('ip', ['netns', 'exec', link.name, 'nft', '-f', '-'], {
          input: `table inet ${table} {
  chain out { type filter hook output priority 0; policy accept; ip daddr ${link.hostAddr} drop; }
  chain in { type filter hook input priority 0; policy accept; ip saddr ${link.hostAddr} drop; }
}
`,
          stdio: ['pipe', 'pipe', 'pipe'],
          timeout: 10_000,
        });
        partitioned = true;
      },
      heal() {
        if (!partitioned || !link) return;
        execFileSync('ip', ['netns', 'exec', link.name, 'nft', 'delete', 'table', 'inet', table], {
          stdio: ['pipe', 'pipe', 'pipe'],
          timeout: 10_000,
        });
        partitioned = false;
      },
    };
    return node;
  });

  const monitor = (n: NatsClusterNode) => `http://${layouts[nodes.indexOf(n)]?.host}:${n.httpPort}`;

  const waitHealthy = async (timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const states = await Promise.all(
        nodes
          .filter((n) => n.running)
          .map(async (n) => {
            try {
              const r = await getJson(`${monitor(n)}/healthz`);
              return r.status === 200 ? undefined : `${n.name}: ${JSON.stringify(r.body)}`;
            } catch (err) {
              return `${n.name}: ${(err as Error).message}`;
            }
          }),
      );
      const bad = states.filter((s) => s !== undefined);
      if (bad.length === 0) return;
      last = bad.join('; ');
      if (Date.now() > deadline) throw new Error(`cluster not healthy within ${timeoutMs} ms: ${last}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const stop = async () => {
    for (const n of nodes) n.heal();
    await Promise.all(nodes.map((n) => n.stop()));
    dir.remove();
  };

  try {
    await Promise.all(nodes.map((n) => n.start()));
    await waitHealthy();
  } catch (err) {
    await Promise.all(nodes.map((n) => n.kill()));
    dir.remove();
    throw err;
  }

  return {
    urls: nodes.map((n) => n.url),
    url: nodes.map((n) => n.url).join(','),
    nodes,
    waitHealthy,
    async leaderOf(stream, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (const n of nodes.filter((m) => m.running)) {
          try {
            const { body } = await getJson(`${monitor(n)}/jsz?streams=true`);
            for (const acc of (body as Jsz).account_details ?? [])
              for (const s of acc.stream_detail ?? [])
                if (
                  s.name === stream &&
                  s.cluster?.leader &&
                  nodes.some((m) => m.running && m.name === s.cluster?.leader)
                )
                  return s.cluster.leader;
          } catch {}
        }
        if (Date.now() > deadline) throw new Error(`stream ${stream} has no leader after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
    },
    stop,
  };
}
