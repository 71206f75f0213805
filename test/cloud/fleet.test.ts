import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addEdge, collectorSeed } from '@fieldbeam/cloud';
import { type EdgeStatus, subjects } from '@fieldbeam/protocol';
import { jetstream } from '@nats-io/jetstream';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CollectorProcess,
  type CommandResult,
  cloudCli,
  type EdgeAgentProcess,
  type NatsServer,
  repoRoot,
  runNodeScript,
  startCollectorProcess,
  startEdgeAgentProcess,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';
import { promQlMetricNames } from './promql-names.js';

/**
 * The fleet registry with real processes: one collector, two edge agents with their own NATS keys
 * (and one edge registered but never started), heartbeating every 500 ms, so offline after 1.5 s.
 */
const INTERVAL_MS = 500;
const EDGES = ['gw-a', 'gw-b'] as const;

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let idDir: string;
let collector: CollectorProcess;
let db: pg.Pool;
const agents = new Map<string, EdgeAgentProcess>();

interface Entry {
  id: string;
  registered: boolean;
  online: boolean;
  lastSeen: string | null;
  firstSeen: string | null;
  version: string | null;
  bufferDepth: number | null;
  oldestUnsentAgeS: number | null;
  sensors: number | null;
  offlineAfterS: number;
}

/** `fieldbeam-cloud ARGS` with the collector's settings: exit code, stdout, stderr. */
function cloud(args: string[]): Promise<CommandResult> {
  return runNodeScript(cloudCli, args, {
    NATS_URL: nats.url,
    DATABASE_URL: postgres.url,
    FB_IDENTITY_DIR: idDir,
    FB_DATA_DIR: join(dir.path, 'cli'),
  });
}

/**
 * `fieldbeam-cloud ARGS` for an edge that is up: on a busy box its heartbeat may come late enough
 * for the registry to count it offline for a moment (exit 3), so that answer is asked again.
 */
function ask(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return waitFor(`fieldbeam-cloud ${args.join(' ')} answered by an online edge`, async () => {
    const r = await cloud(args);
    return r.code === 3 ? undefined : r;
  });
}

async function fleet(): Promise<Map<string, Entry>> {
  const r = await cloud(['edge', 'list', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return new Map((JSON.parse(r.stdout) as Entry[]).map((e) => [e.id, e]));
}

const until = (what: string, f: (edges: Map<string, Entry>) => boolean) =>
  waitFor(what, async () => {
    const edges = await fleet();
    return f(edges) ? edges : undefined;
  });

beforeAll(async () => {
  dir = tempDir();
  idDir = join(dir.path, 'identity');
  const seeds = new Map(EDGES.map((id) => [id, addEdge(idDir, id).seed]));
  const last = addEdge(idDir, 'gw-never');
  [nats, postgres] = await Promise.all([
    startNatsServer({ extraConfig: readFileSync(last.files.authorization, 'utf8') }),
    startPostgres(),
  ]);
  db = new pg.Pool({ connectionString: postgres.url });
  // Idle connections end when Postgres stops at the end: not an error of the test.
  db.on('error', () => {});
  collector = await startCollectorProcess({
    name: 'fleet-1',
    natsUrl: nats.url,
    databaseUrl: postgres.url,
    dataDir: join(dir.path, 'collector'),
    env: { FB_IDENTITY_DIR: idDir },
  });
  for (const id of EDGES) {
    agents.set(
      id,
      await startEdgeAgentProcess({
        dir: dir.path,
        config: {
          edge: id,
          status_interval_ms: INTERVAL_MS,
          nats: { servers: [nats.url], nkey_seed: seeds.get(id) },
          sensors: [
            { topic: 's/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
          ],
        },
      }),
    );
  }
});

afterAll(async () => {
  await Promise.all([...agents.values()].map((a) => a.stop()));
  await collector?.stop();
  await db?.end();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

describe('fleet registry', () => {
  it('lists both edges online, and the registered edge never seen as offline', async () => {
    const edges = await until('both edges online', (e) => EDGES.every((id) => e.get(id)?.online));
    for (const id of EDGES) {
      expect(edges.get(id)).toMatchObject({ registered: true, online: true, bufferDepth: 0 });
      // As many sensors as the agent reports (agents that do not report them: null, shown as -).
      const own = (await agents.get(id)?.status()) as { sensorCount?: number } | undefined;
      expect(edges.get(id)?.sensors).toBe(own?.sensorCount ?? null);
      expect(edges.get(id)?.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(edges.get(id)?.offlineAfterS).toBe((3 * INTERVAL_MS) / 1000);
    }
    expect(edges.get('gw-never')).toMatchObject({ online: false, lastSeen: null, bufferDepth: null });

    // (Asked until both show online: on a busy box a late heartbeat can count an edge offline a moment.)
    const table = await waitFor('the table with both edges online', async () => {
      const r = await cloud(['edge', 'list']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.includes('3 edges, 2 online') ? r : undefined;
    });
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(/^ID\s+ONLINE\s+LAST SEEN\s+VERSION\s+BUFFER\s+OLDEST UNSENT\s+SENSORS$/);
    expect(lines.find((l) => l.startsWith('gw-a '))).toMatch(
      /^gw-a\s+yes\s+\d+ s ago\s+\S+\s+0 \(0 B, 0%\)\s+-\s+(-|1)$/,
    );
    expect(lines.find((l) => l.startsWith('gw-never '))).toMatch(/^gw-never\s+no\s+never\s+-/);
    expect(table.stdout).toContain('3 edges, 2 online');
  });

  it('exports per-edge gauges that the rules file references', async () => {
    const metrics = await waitFor('edge gauges', async () => {
      const m = await collector.metrics();
      return m?.get('fb_cloud_fleet_edges{state="online"}') === 2 ? m : undefined;
    });
    expect(metrics.get('fb_cloud_edge_online{edge="gw-a"}')).toBe(1);
    expect(metrics.get('fb_cloud_edge_buffer_depth{edge="gw-b"}')).toBe(0);
    expect(metrics.get('fb_cloud_edge_last_seen_age_seconds{edge="gw-b"}')).toBeLessThan(60);
    expect(metrics.has('fb_cloud_edge_oldest_unsent_age_seconds{edge="gw-a"}')).toBe(true);
    expect(metrics.get('fb_cloud_fleet_edges{state="online"}')).toBe(2);

    const exported = new Set([...metrics.keys()].map((k) => k.replace(/\{.*$/, '')));
    const rules = readFileSync(join(repoRoot(), 'deploy/prometheus/fieldbeam-rules.yml'), 'utf8');
    const referenced = promQlMetricNames(rules);
    expect(referenced).toEqual(
      expect.arrayContaining(['fb_cloud_edge_online', 'fb_cloud_edge_oldest_unsent_age_seconds']),
    );
    for (const name of referenced) expect(exported, `${name} in /metrics`).toContain(name);
    // The names are found the way Prometheus reads them (promtool, deploy/setup.sh installs it).
    expect(
      promQlMetricNames(
        'groups: [{rules: [{expr: \'sum by (edge) (rate(x_total{a="b"}[5m])) > on (edge) y\'}]}]',
      ),
    ).toEqual(['x_total', 'y']);
    const check = spawnSync(
      'promtool',
      ['check', 'rules', join(repoRoot(), 'deploy/prometheus/fieldbeam-rules.yml')],
      {
        encoding: 'utf8',
      },
    );
    expect(check.status, `${check.stdout}${check.stderr}${check.error ?? ''}`).toBe(0);
    expect(check.stdout).toContain('SUCCESS');
    // And they fire as meant: offline, lagging, refused heartbeats, one alert per edge over two collectors.
    const unit = spawnSync('promtool', ['test', 'rules', 'fieldbeam-rules.test.yml'], {
      cwd: join(repoRoot(), 'deploy/prometheus'),
      encoding: 'utf8',
    });
    expect(unit.status, `${unit.stdout}${unit.stderr}${unit.error ?? ''}`).toBe(0);
  });

  it('asks an online edge over NATS: ping, status, rejects, reload', async () => {
    const a = agents.get('gw-a') as EdgeAgentProcess;
    const c = await mqtt.connectAsync(a.mqttUrl);
    await c.publishAsync('s/st9/t', 'not a number', { qos: 1 });
    await c.endAsync();

    const ping = await ask(['edge', 'ping', 'gw-a']);
    expect(ping.code, ping.stderr).toBe(0);
    expect(ping.stdout).toMatch(/^gw-a answered in \d+ ms: version \S+, up \d+ s/);

    const status = await ask(['edge', 'status', 'gw-a']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(
      /^edge gw-a: online \(last heartbeat \d+ s ago, every 0.5 s; offline after 1.5 s without one\)/,
    );
    expect(status.stdout).toContain('as the edge answers now:');
    const json = JSON.parse((await ask(['edge', 'status', 'gw-a', '--json'])).stdout);
    expect(json).toMatchObject({
      id: 'gw-a',
      online: true,
      live: { edge: 'gw-a' },
      heartbeat: { edge: 'gw-a' },
    });

    const rejects = await waitFor('the reject kept by gw-a', async () => {
      const r = await ask(['edge', 'rejects', 'gw-a', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const list = JSON.parse(r.stdout) as { topic: string; reason: string }[];
      return list.length > 0 ? list : undefined;
    });
    expect(rejects[0]?.topic).toBe('s/st9/t');
    const text = await ask(['edge', 'rejects', 'gw-a']);
    expect(text.stdout).toContain('s/st9/t');

    const reload = await ask(['edge', 'reload', 'gw-a']);
    expect(reload.code, reload.stderr).toBe(0);
    expect(reload.stdout).toMatch(/^gw-a reloaded its config: 1 sensors \(no change\)/);
  });

  it('shows a killed edge offline, answers requests to it at once, and online again after its restart', async () => {
    const b = agents.get('gw-b') as EdgeAgentProcess;
    await b.kill();
    // The documented bound is 3 intervals (1.5 s) after its last heartbeat; the wait allows for a busy box.
    const edges = await until(
      'gw-b offline, gw-a online',
      (e) => e.get('gw-b')?.online === false && e.get('gw-a')?.online === true,
    );
    const seen = Date.parse(edges.get('gw-b')?.lastSeen as string);

    for (const op of ['status', 'rejects', 'ping', 'reload']) {
      const r = await cloud(['edge', op, 'gw-b']);
      expect(r.code, `${op}: ${r.stderr}`).toBe(3);
      expect(r.stderr).toMatch(/^gw-b is offline, last seen \d+ s ago/);
    }
    const status = await cloud(['edge', 'status', 'gw-b', '--json']);
    expect(status.code).toBe(3);
    expect(JSON.parse(status.stdout)).toMatchObject({
      id: 'gw-b',
      online: false,
      live: null,
      heartbeat: { edge: 'gw-b' },
    });
    const never = await cloud(['edge', 'ping', 'gw-never']);
    expect(never.code).toBe(3);
    expect(never.stderr).toMatch(/gw-never is offline: registered, but it has never sent a heartbeat/);
    const unknown = await cloud(['edge', 'status', 'gw-nobody']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/gw-nobody is not a registered edge and has never sent a heartbeat/);

    await b.start();
    // Readings published right after the restart pass through its buffer; it empties again.
    const c = await mqtt.connectAsync(b.mqttUrl);
    for (let i = 0; i < 20; i++) await c.publishAsync('s/st1/t', String(i), { qos: 1 });
    await c.endAsync();
    const back = await until(
      'gw-b online again with an empty buffer',
      (e) =>
        e.get('gw-b')?.online === true &&
        e.get('gw-b')?.bufferDepth === 0 &&
        Date.parse(e.get('gw-b')?.lastSeen as string) > seen,
    );
    expect(back.get('gw-b')?.oldestUnsentAgeS).toBeNull();
    // edge status says what the collector received of them: all 20, no gap.
    const account = await waitFor('the 20 readings of gw-b accounted for', async () => {
      const r = await cloud(['edge', 'status', 'gw-b', '--json']);
      const c = (JSON.parse(r.stdout) as { completeness: { readings: number; unexplained: number } })
        .completeness;
      return c.readings === 20 ? c : undefined;
    });
    expect(account.unexplained).toBe(0);
    expect((await cloud(['edge', 'status', 'gw-b'])).stdout).toContain(
      'completeness  20 readings received; gaps explained by the edge: dropped oldest 0; unexplained 0',
    );
  });

  it('dead-letters a heartbeat whose body names another edge than its subject, and keeps going', async () => {
    const before = await fleet();
    const nc = await connect({
      servers: nats.url,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(collectorSeed(idDir))),
      inboxPrefix: subjects.inbox('collector'),
    });
    try {
      const js = jetstream(nc);
      const spoof: EdgeStatus = {
        v: 1,
        edge: 'gw-a',
        time: new Date().toISOString(),
        version: '9.9.9-spoofed',
        uptimeS: 1,
        buffer: { depth: 999, bytes: 1, capacityBytes: 10, oldestUnsentAgeS: 1, dropped: 0 },
        rates: { inPerS: 0, outPerS: 0 },
        rejected: 0,
        diskFreeBytes: null,
        clock: 'unknown',
        uplink: 'connected',
      };
      await js.publish(subjects.edgeStatus('gw-never'), JSON.stringify(spoof));
      await js.publish(subjects.edgeStatus('gw-never'), 'not json');
    } finally {
      await nc.close();
    }
    const rows = await waitFor('two fleet dead letters', async () => {
      const r = await db.query<{ subject: string; reason: string; code: string }>(
        `SELECT subject, reason, code FROM dead_letters WHERE source = 'fleet' ORDER BY id`,
      );
      return r.rows.length >= 2 ? r.rows : undefined;
    });
    expect(rows[0]).toMatchObject({ subject: 'fb.edge.gw-never.status', code: 'FB_CLOUD_MESSAGE_INVALID' });
    expect(rows[0]?.reason).toMatch(/says it is from edge "gw-a": an edge speaks only for itself/);
    expect(rows[1]?.reason).toMatch(/not JSON/);

    // Neither landed anywhere, and later heartbeats are still recorded.
    const after = await until(
      'a newer heartbeat of gw-a',
      (e) => (e.get('gw-a')?.lastSeen ?? '') > (before.get('gw-a')?.lastSeen ?? ''),
    );
    expect(after.get('gw-never')).toMatchObject({ online: false, lastSeen: null });
    expect(after.get('gw-a')?.version).not.toBe('9.9.9-spoofed');
    const metrics = await collector.metrics();
    expect(metrics?.get('fb_cloud_fleet_heartbeats_refused_total{reason="edge_mismatch"}')).toBe(1);
    expect(metrics?.get('fb_cloud_fleet_heartbeats_refused_total{reason="json"}')).toBe(1);
    const listed = await cloud(['dead-letters', '--source', 'fleet']);
    expect(listed.stdout).toContain('fb.edge.gw-never.status');
  });

  it('keeps the fleet across a collector restart and shows it to a second collector (state in Postgres)', async () => {
    const before = await fleet();
    await collector.stop();
    // With no collector running, the CLI still answers from Postgres.
    const meanwhile = await fleet();
    expect(meanwhile.get('gw-a')?.firstSeen).toBe(before.get('gw-a')?.firstSeen);
    await collector.start();
    const after = await until(
      'heartbeats recorded again',
      (e) => (e.get('gw-a')?.lastSeen ?? '') > (meanwhile.get('gw-a')?.lastSeen ?? ''),
    );
    expect(after.get('gw-a')?.firstSeen).toBe(before.get('gw-a')?.firstSeen);
    expect(after.get('gw-a')?.online).toBe(true);

    // A second collector shares the registry's consumer and reports the same fleet.
    const second = await startCollectorProcess({
      name: 'fleet-2',
      natsUrl: nats.url,
      databaseUrl: postgres.url,
      dataDir: join(dir.path, 'collector-2'),
      env: { FB_IDENTITY_DIR: idDir },
    });
    try {
      const m = await waitFor('the fleet in the second collector', async () => {
        const got = await second.metrics();
        return got?.get('fb_cloud_fleet_edges{state="online"}') === 2 ? got : undefined;
      });
      expect(m.get('fb_cloud_edge_online{edge="gw-a"}')).toBe(1);
      expect(m.get('fb_cloud_edge_online{edge="gw-b"}')).toBe(1);
      const recorded = async () =>
        ((await collector.metrics())?.get('fb_cloud_fleet_heartbeats_total') ?? 0) +
        ((await second.metrics())?.get('fb_cloud_fleet_heartbeats_total') ?? 0);
      const total = await recorded();
      // Both keep recording: heartbeats go on being recorded whichever collector takes them.
      await waitFor('more heartbeats recorded', async () =>
        (await recorded()) > total + 4 ? true : undefined,
      );
    } finally {
      await second.stop();
    }
  });
  it('edge authorize finds the authorization current; edge remove takes a decommissioned edge out', async () => {
    const authorize = await cloud(['edge', 'authorize']);
    expect(authorize.code, authorize.stderr).toBe(0);
    expect(authorize.stdout).toMatch(/nats-authorization\.conf is current: nothing to do/);

    const removed = await cloud(['edge', 'remove', 'gw-never']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toMatch(/edge gw-never removed from .*edges\.json/);
    expect(readFileSync(join(idDir, 'nats-authorization.conf'), 'utf8')).not.toContain('gw-never');
    expect((await fleet()).has('gw-never')).toBe(false);
    expect((await fleet()).has('gw-a')).toBe(true);

    const again = await cloud(['edge', 'remove', 'gw-never']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/gw-never is not a registered edge/);
  });
});
