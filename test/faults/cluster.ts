/**
 * Fault scenarios on a 3-node JetStream cluster with 3-replica streams (deploy/nats/cluster-node.conf),
 * under the usual steady load from two edges (1,000 readings/s each), with per-identity nkeys: node
 * crashes (the FB_OBS leader, a follower), a rolling restart, a node cut off by a network partition,
 * and three collectors sharing ingest and builds with one killed -9 mid-ingest and mid-build. Each
 * checks, as every scenario does, that no acknowledged reading is lost or stored twice and that the
 * collector's completeness account has no unexplained gap; recoveries are timed from the fault.
 */
import { streams } from '@fieldbeam/protocol';
import {
  type Afterwards,
  between,
  type Mode,
  type Recorder,
  type Scenario,
  type ScenarioContext,
  withSystem,
} from './scenarios.js';
import { type FaultSystem, type SystemSpec, sleep } from './system.js';

const pick = <T>(mode: Mode, quick: T, full: T) => (mode === 'quick' ? quick : full);
const s = (ms: number) => sleep(ms * 1000);
const OBS = streams.OBS.name;
const secondsSince = (t: number) => ((Date.now() - t) / 1000).toFixed(1);

function clusterSpec(
  scenario: string,
  seconds: number,
  o: { collectors?: number; partitionable?: boolean; datasets?: string } = {},
): SystemSpec {
  return {
    scenario,
    collectors: o.collectors ?? 1,
    auth: 'nkey',
    cluster: { nodes: 3, replicas: 3, ...(o.partitionable ? { partitionable: true } : {}) },
    ...(o.datasets ? { datasets: o.datasets } : {}),
    edges: [
      { name: 'a', uplink: 'direct', rate: 1000, seconds },
      { name: 'b', uplink: 'direct', rate: 1000, seconds },
    ],
  };
}

function clusterOf(sys: FaultSystem) {
  if (!sys.cluster) throw new Error('the system runs no cluster');
  return sys.cluster;
}

/** Waits for the cluster to be whole and current again; notes how long the node took to catch up. */
async function caughtUp(sys: FaultSystem, rec: Recorder, node: string, since: number, what = 'restart') {
  await clusterOf(sys).waitHealthy(120_000);
  rec.notes.push(`${node} current again ${secondsSince(since)} s after its ${what}`);
}

/**
 * kill -9 of one node of the cluster, `which` the FB_OBS leader or a follower, restarted after `down`
 * seconds with its store. Recoveries: from the kill (every reading acknowledged before it stored,
 * through the remaining two nodes) and from the restart.
 */
function nodeKill(name: string, which: 'leader' | 'follower'): Scenario {
  return {
    name,
    summary:
      which === 'leader'
        ? 'kill -9 of the FB_OBS stream leader of a 3-node cluster (R3 streams), restarted with its store'
        : 'kill -9 of a non-leader node of a 3-node cluster (R3 streams), restarted with its store',
    run: (ctx: ScenarioContext) => {
      const kills = pick(ctx.mode, 1, 3);
      const down = pick(ctx.mode, 3, 15);
      return withSystem(clusterSpec(name, kills * (down + 12) + 8), ctx, async (sys, rec) => {
        const cluster = clusterOf(sys);
        await sys.startLoads();
        for (let k = 0; k < kills; k++) {
          await s(between(ctx.random, 2, 4));
          const leader = await cluster.leaderOf(OBS);
          const followers = cluster.nodes.filter((n) => n.name !== leader);
          const node =
            which === 'leader'
              ? cluster.nodes.find((n) => n.name === leader)
              : followers[Math.floor(ctx.random() * followers.length)];
          if (!node) throw new Error(`no ${which} node (leader ${leader})`);
          const killedAt = Date.now();
          await node.kill('SIGKILL');
          rec.recoveries.push(sys.recovery(killedAt));
          const next = await cluster.leaderOf(OBS);
          sys.log(
            `${which} ${node.name} killed (-9); FB_OBS leader now ${next} (${secondsSince(killedAt)} s)`,
          );
          if (which === 'leader')
            rec.notes.push(`leader ${node.name} -> ${next} in ${secondsSince(killedAt)} s`);
          else if (next !== leader) rec.notes.push(`leader moved ${leader} -> ${next} on a follower's kill`);
          await s(down);
          const at = Date.now();
          await node.start();
          sys.log(`${node.name} restarted with its store`);
          rec.recoveries.push(sys.recovery(at));
          await caughtUp(sys, rec, node.name, at);
        }
        rec.notes.push(`${kills} kill(s), ${down} s down each`);
        await s(4);
      });
    },
  };
}

/** Every node stopped (SIGTERM) and started again in turn, each once the cluster is current again. */
const rollingRestart: Scenario = {
  name: 'cluster-rolling-restart',
  summary: 'rolling restart of all three nodes of a 3-node cluster (R3 streams), one at a time',
  run: (ctx) => {
    const rounds = pick(ctx.mode, 1, 2);
    const down = pick(ctx.mode, 1, 5);
    return withSystem(
      clusterSpec('cluster-rolling-restart', rounds * 3 * (down + 8) + 8),
      ctx,
      async (sys, rec) => {
        const cluster = clusterOf(sys);
        await sys.startLoads();
        await s(2);
        const order: string[] = [];
        for (let r = 0; r < rounds; r++) {
          for (const node of cluster.nodes) {
            const leader = await cluster.leaderOf(OBS);
            const stoppedAt = Date.now();
            await node.stop();
            order.push(`${node.name}${node.name === leader ? ' (leader)' : ''}`);
            sys.log(`${node.name} stopped (SIGTERM)${node.name === leader ? ', the FB_OBS leader' : ''}`);
            rec.recoveries.push(sys.recovery(stoppedAt));
            await s(down);
            const at = Date.now();
            await node.start();
            rec.recoveries.push(sys.recovery(at));
            await caughtUp(sys, rec, node.name, at);
          }
        }
        rec.notes.push(`restarted ${order.join(', ')}`);
        await s(3);
      },
    );
  },
};

/**
 * Asks the FB_OBS leader to step down until `node` leads (`lead`) or does not; the new leader is the
 * cluster's pick, so it may take a few tries. Returns the leader in the end.
 */
async function steer(sys: FaultSystem, node: string, lead: boolean): Promise<string> {
  const cluster = clusterOf(sys);
  const nc = await sys.client();
  let leader = await cluster.leaderOf(OBS);
  for (let i = 0; i < 10 && (leader === node) !== lead; i++) {
    await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${OBS}`, '', { timeout: 10_000 }).catch(() => undefined);
    const before = leader;
    await waitForLeaderChange(sys, before);
    leader = await cluster.leaderOf(OBS);
  }
  return leader;
}

async function waitForLeaderChange(sys: FaultSystem, from: string) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (
      (await clusterOf(sys)
        .leaderOf(OBS)
        .catch(() => from)) !== from
    )
      return;
    await sleep(200);
  }
}

/**
 * The last node, run in a network namespace, cut off from the other two and from every client (all
 * traffic dropped), then joined again: first while it leads FB_OBS (the majority side elects another
 * leader; the cut-off one can no longer commit anything), in the full form then as a follower. Either
 * way it must catch up after the heal without losing or doubling anything.
 */
const partition: Scenario = {
  name: 'cluster-partition',
  summary: 'one node of a 3-node cluster cut off in a network namespace (all traffic dropped), then healed',
  run: (ctx) => {
    const times = pick(ctx.mode, 1, 2);
    const cut = pick(ctx.mode, 8, 60);
    return withSystem(
      clusterSpec('cluster-partition', times * (cut + 15) + 8, { partitionable: true }),
      ctx,
      async (sys, rec) => {
        const cluster = clusterOf(sys);
        const node = cluster.nodes[cluster.nodes.length - 1];
        if (!node) throw new Error('no node');
        await sys.startLoads();
        for (let k = 0; k < times; k++) {
          await s(between(ctx.random, 2, 4));
          const leader = await steer(sys, node.name, k % 2 === 0);
          const cutAt = Date.now();
          node.partition();
          sys.log(`${node.name} cut off for ${cut} s (FB_OBS leader: ${leader})`);
          rec.recoveries.push(sys.recovery(cutAt));
          await s(cut);
          const healedAt = Date.now();
          node.heal();
          sys.log(`${node.name} joined again`);
          rec.recoveries.push(sys.recovery(healedAt));
          await caughtUp(sys, rec, node.name, healedAt, 'heal');
          rec.notes.push(
            `${node.name} cut off ${cut} s, ${node.name === leader ? 'while leading FB_OBS' : `leader ${leader}`}`,
          );
        }
        await s(3);
      },
      { settleTimeoutMs: 180_000 },
    );
  },
};

/** Short windows with provisional builds: the builders are at work most of the time. */
const BUILD_DATASETS = `datasets:
  - name: seq5s
    filter: { variables: ["x:seq"] }
    window: PT5S
    grace: PT1S
    debounce: PT0.5S
    provisional: true
`;

/**
 * Three collectors sharing the ingest consumer and the builds (one database, one object folder): one
 * killed -9 while ingesting, later the one holding a build lease killed -9 in the middle of that
 * build. Afterwards no window may stay leased or due, no window version be built twice, and each
 * window's latest version must hold exactly its readings in Postgres.
 */
const threeCollectors: Scenario = {
  name: 'cluster-collectors-kill9',
  summary:
    'three collectors on a 3-node cluster sharing ingest and builds; one killed -9 mid-ingest, one mid-build',
  run: (ctx) => {
    const rounds = pick(ctx.mode, 1, 3);
    return withSystem(
      clusterSpec('cluster-collectors-kill9', rounds * 20 + 10, { collectors: 3, datasets: BUILD_DATASETS }),
      ctx,
      async (sys, rec): Promise<Afterwards> => {
        await sys.startLoads();
        const midBuild: string[] = [];
        for (let r = 0; r < rounds; r++) {
          await s(between(ctx.random, 2, 4));
          // Mid-ingest: any collector is, under this load; the one killed is picked at random.
          const c = sys.collectors[Math.floor(ctx.random() * sys.collectors.length)];
          if (!c) throw new Error('no collector');
          const state = await sys.consumerState();
          const killedAt = Date.now();
          await c.kill();
          sys.log(
            `collector ${c.name} killed (-9) mid-ingest (${state.ackPending ?? '?'} batches unacknowledged)`,
          );
          rec.recoveries.push(sys.recovery(killedAt));
          await s(between(ctx.random, 1, 3));
          const at = Date.now();
          await c.start();
          rec.recoveries.push(sys.recovery(at));

          // Mid-build: the collector holding a lease on a window, killed before the attempt finished.
          const caught = await killMidBuild(sys);
          midBuild.push(caught.note);
          if (!caught.collector) continue;
          await s(between(ctx.random, 1, 3));
          const restartAt = Date.now();
          await caught.collector.start();
          rec.recoveries.push(sys.recovery(restartAt));
        }
        rec.notes.push(`mid-build: ${midBuild.join('; ')}`);
        if (midBuild.every((m) => m.startsWith('no build')))
          rec.failures.push('no collector was caught in the middle of a build');
        await s(4);
        return checkBuilds;
      },
      { settleTimeoutMs: 180_000 },
    );
  },
};

/**
 * Kills the holder of a build lease; tries a few times, since a build may finish between the look and
 * the kill. Returns the killed collector when its attempt was left unfinished (outcome NULL).
 */
async function killMidBuild(sys: FaultSystem) {
  for (let attempt = 1; attempt <= 8; attempt++) {
    const deadline = Date.now() + 15_000;
    let owner: string | undefined;
    while (!owner && Date.now() < deadline) {
      const r = await sys.pool.query<{ lease_owner: string }>(
        `SELECT lease_owner FROM dataset_windows WHERE lease_owner IS NOT NULL AND lease_until > now() LIMIT 1`,
      );
      owner = r.rows[0]?.lease_owner;
      if (!owner) await sleep(20);
    }
    const c = sys.collectors.find((x) => x.name === owner && x.running);
    if (!c) continue;
    await c.kill();
    const last = await sys.pool.query<{ outcome: string | null; window_start: Date }>(
      `SELECT outcome, window_start FROM dataset_builds WHERE owner = $1 ORDER BY id DESC LIMIT 1`,
      [c.name],
    );
    const row = last.rows[0];
    if (row && row.outcome === null) {
      sys.log(`collector ${c.name} killed (-9) mid-build of window ${row.window_start.toISOString()}`);
      return {
        collector: c,
        note: `${c.name} killed building ${row.window_start.toISOString()} (try ${attempt})`,
      };
    }
    // Its build had finished: it was killed between builds; start it and try again.
    sys.log(`collector ${c.name} killed just after its build (${row?.outcome}); again`);
    await c.start();
  }
  return { collector: undefined, note: 'no build caught in 8 tries' };
}

/** After the load: builds settle, and each window's latest version holds exactly the window's rows. */
const checkBuilds: Afterwards = async (sys, rec) => {
  const deadline = Date.now() + 90_000;
  let open = -1;
  while (Date.now() < deadline) {
    const r = await sys.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM dataset_windows
       WHERE due_at IS NOT NULL OR lease_owner IS NOT NULL OR generation > built_generation`,
    );
    open = r.rows[0]?.n ?? -1;
    if (open === 0) break;
    await sleep(500);
  }
  if (open !== 0) rec.failures.push(`${open} windows still due, leased or unbuilt 90 s after the load`);
  const twice = await sys.pool.query<{ window_start: Date; version: number }>(
    `SELECT window_start, version FROM dataset_builds WHERE outcome = 'built'
     GROUP BY 1, 2 HAVING count(*) > 1`,
  );
  if (twice.rows.length > 0) rec.failures.push(`${twice.rows.length} window versions built twice`);
  const wrong = await sys.pool.query<{ window_start: Date; rows: string; actual: string }>(
    `SELECT w.window_start, v.rows, (SELECT count(*) FROM observations o
        WHERE o.variable = 'x:seq' AND o.time >= w.window_start AND o.time < w.window_end) AS actual
     FROM dataset_windows w JOIN dataset_versions v
       ON v.dataset = w.dataset AND v.window_start = w.window_start AND v.version = w.version`,
  );
  const bad = wrong.rows.filter((r) => Number(r.rows) !== Number(r.actual));
  for (const b of bad.slice(0, 3))
    rec.failures.push(
      `window ${b.window_start.toISOString()}: version holds ${b.rows} rows, Postgres ${b.actual}`,
    );
  const unbuilt = await sys.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM dataset_windows WHERE version IS NULL`,
  );
  const never = unbuilt.rows[0]?.n ?? 0;
  if (never > 0) rec.failures.push(`${never} windows with data and no built version`);
  rec.notes.push(`${wrong.rows.length} windows built, ${bad.length} with other rows than Postgres`);
};

export const clusterScenarios: Scenario[] = [
  nodeKill('cluster-leader-kill9', 'leader'),
  nodeKill('cluster-follower-kill9', 'follower'),
  rollingRestart,
  partition,
  threeCollectors,
];
