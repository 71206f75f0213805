import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { addEdge, collectorSeed } from '@fieldbeam/cloud';
import { centralSensors, type EdgeStatus } from '@fieldbeam/protocol';
import { Kvm } from '@nats-io/kv';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import mqtt, { type MqttClient } from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CollectorProcess,
  type CommandResult,
  cloudCli,
  type EdgeAgentProcess,
  type NatsServer,
  runNodeScript,
  startCollectorProcess,
  startEdgeAgentProcess,
  startNatsServer,
  startPostgres,
  startTcpProxy,
  type TcpProxy,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';

/**
 * Sensors added centrally (`fieldbeam-cloud sensors`) with real processes: one collector with
 * Postgres, two edge agents with their own NATS keys (gw-b's uplink through a proxy that can cut it).
 * Nothing is done on the edges' side: readings for the new topics reach Postgres.
 */
const EDGES = ['gw-a', 'gw-b'] as const;
const LOCAL = {
  topic: 's/+station/t',
  decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
};

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let idDir: string;
let collector: CollectorProcess;
let db: pg.Pool;
let proxy: TcpProxy;
const agents = new Map<string, EdgeAgentProcess>();
const configs = new Map<string, Record<string, unknown> & { edge: string }>();
const clients: MqttClient[] = [];

type Status = EdgeStatus & { ok: boolean };

function cloud(args: string[]): Promise<CommandResult> {
  return runNodeScript(cloudCli, args, {
    NATS_URL: nats.url,
    FB_IDENTITY_DIR: idDir,
    FB_DATA_DIR: join(dir.path, 'cli'),
  });
}

async function sensorsAdd(args: string[]): Promise<number> {
  const r = await cloud(['sensors', 'add', ...args]);
  expect(r.code, r.stderr).toBe(0);
  const revision = Number(/revision (\d+)/.exec(r.stdout)?.[1]);
  expect(revision, r.stdout).toBeGreaterThan(0);
  return revision;
}

const agent = (id: string) => agents.get(id) as EdgeAgentProcess;

/** The agent's status once `f` holds for it. */
function statusWhen(id: string, what: string, f: (s: Status) => boolean): Promise<Status> {
  return waitFor(`${id}: ${what}`, async () => {
    const s = await agent(id).status();
    return s && f(s) ? s : undefined;
  });
}

const centralTopics = (s: Status) =>
  (s.sensors ?? []).filter((x) => x.origin === 'central').map((x) => x.topic);

/** A sensor's MQTT client on an agent's broker; every time it lost its connection is counted. */
async function sensorClient(id: string): Promise<{ client: MqttClient; closes: () => number }> {
  let closes = 0;
  const client = await mqtt.connectAsync(agent(id).mqttUrl, { clientId: `sensor-${id}-${clients.length}` });
  client.on('close', () => closes++);
  clients.push(client);
  return { client, closes: () => closes };
}

function readingsIn(edge: string, station: string): Promise<{ variable: string; value: number }[]> {
  return waitFor(`${edge}/${station} readings in Postgres`, async () => {
    const { rows } = await db.query<{ variable: string; value: number }>(
      'SELECT variable, value FROM observations WHERE edge = $1 AND station = $2 ORDER BY variable',
      [edge, station],
    );
    return rows.length > 0 ? rows : undefined;
  });
}

const collectorKv = async () => {
  const nc = await connect({
    servers: nats.url,
    authenticator: nkeyAuthenticator(new TextEncoder().encode(collectorSeed(idDir))),
  });
  return { nc, kv: await new Kvm(nc).open(centralSensors.bucket, { allow_direct: true }) };
};

beforeAll(async () => {
  dir = tempDir();
  idDir = join(dir.path, 'identity');
  const seeds = new Map(EDGES.map((id) => [id, addEdge(idDir, id).seed]));
  [nats, postgres] = await Promise.all([
    startNatsServer({ extraConfig: readFileSync(join(idDir, 'nats-authorization.conf'), 'utf8') }),
    startPostgres(),
  ]);
  proxy = await startTcpProxy(nats.port);
  db = new pg.Pool({ connectionString: postgres.url });
  // Idle connections end when Postgres stops at the end: not an error of the test.
  db.on('error', () => {});
  collector = await startCollectorProcess({
    name: 'sensors-1',
    natsUrl: nats.url,
    databaseUrl: postgres.url,
    dataDir: join(dir.path, 'collector'),
    env: { FB_IDENTITY_DIR: idDir },
  });
  for (const id of EDGES) {
    const config = {
      edge: id,
      status_interval_ms: 500,
      central_poll_ms: 1000,
      // gw-b reaches NATS through the proxy, which the offline test cuts.
      nats: {
        servers: [id === 'gw-b' ? `nats://127.0.0.1:${proxy.port}` : nats.url],
        nkey_seed: seeds.get(id),
      },
      sensors: [LOCAL],
    };
    configs.set(id, config);
    agents.set(id, await startEdgeAgentProcess({ dir: dir.path, config }));
  }
  for (const id of EDGES) await statusWhen(id, 'uplink connected', (s) => s.uplink === 'connected');
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true).catch(() => {})));
  await Promise.all([...agents.values()].map((a) => a.stop()));
  await collector?.stop();
  await db?.end();
  await proxy?.close();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

describe('sensors added centrally', () => {
  it('reaches an online edge: its readings for the new topic reach Postgres; no MQTT connection dropped', async () => {
    const { client, closes } = await sensorClient('gw-a');
    const before = await agent('gw-a').status();
    expect(before?.config).toEqual({ revision: null, appliedAt: null, error: null, refusedRevision: null });
    expect(before?.sensors).toEqual([
      { topic: LOCAL.topic, decoder: 'number', origin: 'local', lastReadingTime: null },
    ]);

    const revision = await sensorsAdd([
      'gw-a',
      '--topic',
      'zigbee2mqtt/+station',
      '--decoder',
      'zigbee2mqtt',
    ]);
    const applied = await statusWhen(
      'gw-a',
      `revision ${revision} applied`,
      (s) => s.config?.revision === revision,
    );
    expect(centralTopics(applied)).toEqual(['zigbee2mqtt/+station']);
    expect(applied.sensorCount).toBe(2);

    await client.publishAsync(
      'zigbee2mqtt/greenhouse1',
      JSON.stringify({ temperature: 23.5, humidity: 61 }),
      {
        qos: 1,
      },
    );
    await client.publishAsync('s/yard/t', '4.5', { qos: 1 });
    expect(await readingsIn('gw-a', 'greenhouse1')).toEqual([
      { variable: 'air_temperature', value: 23.5 },
      { variable: 'relative_humidity', value: 61 },
    ]);
    expect(await readingsIn('gw-a', 'yard')).toEqual([{ variable: 'air_temperature', value: 4.5 }]);
    const seen = await statusWhen('gw-a', 'last reading times', (s) =>
      (s.sensors ?? []).every((x) => x.lastReadingTime !== null),
    );
    expect(seen.sensors?.map((x) => x.origin)).toEqual(['local', 'central']);
    // The sensor's connection lived through the apply.
    expect(closes()).toBe(0);
    expect(client.connected).toBe(true);

    // SIGHUP reloads the YAML and keeps the central sensors.
    agent('gw-a').writeConfig({
      ...configs.get('gw-a'),
      sensors: [LOCAL, { ...LOCAL, topic: 'x/+station/t' }],
    });
    agent('gw-a').signal('SIGHUP');
    const reloaded = await statusWhen('gw-a', 'the second local sensor', (s) => s.sensorCount === 3);
    expect(reloaded.sensors?.map((x) => `${x.origin} ${x.topic}`)).toEqual([
      'local s/+station/t',
      'local x/+station/t',
      'central zigbee2mqtt/+station',
    ]);
    expect(closes()).toBe(0);
  });

  it('refuses an invalid decoder config at sensors add, with the reason, and writes nothing', async () => {
    const listed = await cloud(['sensors', 'list', 'gw-a', '--json']);
    const revisionBefore = (JSON.parse(listed.stdout) as { revision: number }).revision;
    const r = await cloud([
      'sensors',
      'add',
      'gw-a',
      '--topic',
      'p/+station',
      '--decoder',
      'number',
      '--decoder-json',
      '{"variable":"air_temperature","scale":2}',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sensor refused.*decoder/);
    expect(r.stderr).toMatch(/unit/);
    expect(r.stderr).toMatch(/scale/);
    const after = JSON.parse((await cloud(['sensors', 'list', 'gw-a', '--json'])).stdout) as {
      revision: number;
    };
    expect(after.revision).toBe(revisionBefore);
  });

  it('an invalid value written straight into the bucket is refused by the edge, which keeps its last good config', async () => {
    const good = (await agent('gw-a').status())?.config?.revision as number;
    const { nc, kv } = await collectorKv();
    try {
      const previous = await kv.get('edge.gw-a');
      const bad = await kv.put(
        'edge.gw-a',
        JSON.stringify({ sensors: [{ topic: 'q/+station', decoder: { type: 'lorawan' } }] }),
      );
      const refused = await statusWhen(
        'gw-a',
        'the refusal reported',
        (s) => s.config?.refusedRevision === bad,
      );
      expect(refused.config?.revision).toBe(good);
      expect(refused.config?.error).toMatch(/edge\.gw-a revision \d+: sensors\.0\.decoder/);
      expect(centralTopics(refused)).toEqual(['zigbee2mqtt/+station']);
      expect((await agent('gw-a').metrics())?.get('fb_edge_central_config_refused_total')).toBe(1);
      // The last good config still decodes.
      const { client } = await sensorClient('gw-a');
      await client.publishAsync('zigbee2mqtt/greenhouse2', JSON.stringify({ temperature: 19 }), { qos: 1 });
      expect(await readingsIn('gw-a', 'greenhouse2')).toEqual([{ variable: 'air_temperature', value: 19 }]);
      // sensors add will not build on a value the edges refuse.
      const r = await cloud(['sensors', 'add', 'gw-a', '--topic', 'p/+station', '--decoder', 'shelly']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/edge\.gw-a \(revision \d+\) is not a valid sensor config/);
      // The operator sees both sides: the stored value is invalid, the edge refused it.
      const list = await cloud(['sensors', 'list', 'gw-a']);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toMatch(/INVALID edge\.gw-a revision \d+: edges refuse it/);
      expect(list.stdout).toContain(`REFUSED revision ${bad}`);
      // Repaired: the error clears.
      const fixed = await kv.put('edge.gw-a', previous?.string() ?? '');
      const ok = await statusWhen('gw-a', 'the repair applied', (s) => s.config?.revision === fixed);
      expect(ok.config?.error).toBeNull();
      expect(ok.config?.refusedRevision).toBeNull();
    } finally {
      await nc.close();
    }
  });

  it('--all reaches every edge, each merging it under its own sensors', async () => {
    const revision = await sensorsAdd(['--all', '--topic', 'tele/+station/SENSOR', '--decoder', 'tasmota']);
    for (const id of EDGES) {
      const s = await statusWhen(id, 'the fleet-wide sensor', (x) => (x.config?.revision ?? 0) >= revision);
      expect(centralTopics(s)).toContain('tele/+station/SENSOR');
      const { client } = await sensorClient(id);
      await client.publishAsync(
        `tele/balcony-${id}/SENSOR`,
        JSON.stringify({
          Time: new Date().toISOString().slice(0, 19),
          AM2301: { Temperature: 12.25, Humidity: 70 },
        }),
        { qos: 1 },
      );
    }
    for (const id of EDGES)
      expect(await readingsIn(id, `balcony-${id}`)).toEqual([
        { variable: 'air_temperature', value: 12.25 },
        { variable: 'relative_humidity', value: 70 },
      ]);
    const list = await cloud(['sensors', 'list', 'gw-b']);
    expect(list.stdout).toMatch(/tele\/\+station\/SENSOR\s+tasmota\s+-\s+-\s+-\s+all/);
  });

  it('reaches an edge that was offline when it was added, on reconnect, without a restart', async () => {
    const pid = agent('gw-b').process?.child.pid;
    await proxy.setMode('refuse');
    await statusWhen('gw-b', 'uplink down', (s) => s.uplink === 'disconnected');
    const revision = await sensorsAdd([
      'gw-b',
      '--topic',
      'shellies/+station/sensor/temperature',
      '--decoder',
      'shelly',
      '--lat',
      '52.5',
      '--lon',
      '13.4',
    ]);
    // Cut off, it cannot have it.
    expect((await agent('gw-b').status())?.config?.revision ?? 0).toBeLessThan(revision);
    await proxy.setMode('pass');
    const s = await statusWhen(
      'gw-b',
      `revision ${revision} after reconnecting`,
      (x) => x.config?.revision === revision,
    );
    expect(centralTopics(s)).toEqual(['shellies/+station/sensor/temperature', 'tele/+station/SENSOR']);
    expect(agent('gw-b').process?.child.pid).toBe(pid);
    const { client } = await sensorClient('gw-b');
    await client.publishAsync('shellies/shellyht-1/sensor/temperature', '5.5', { qos: 1 });
    expect(await readingsIn('gw-b', 'shellyht-1')).toEqual([{ variable: 'air_temperature', value: 5.5 }]);
  });

  it('promotes a sensor the edge auto-registered into its central config', async () => {
    const b = agent('gw-b');
    b.writeConfig({ ...configs.get('gw-b'), auto_register: true });
    b.signal('SIGHUP');
    const { client } = await sensorClient('gw-b');
    await waitFor('the heartbeat listing the auto-registered sensor', async () => {
      await client.publishAsync('zigbee2mqtt/attic', JSON.stringify({ temperature: 15.5 }), { qos: 1 });
      const list = await cloud(['sensors', 'list', 'gw-b', '--json']);
      const reported = (JSON.parse(list.stdout) as { reported?: { topic: string; origin: string }[] })
        .reported;
      return reported?.some((x) => x.topic === 'zigbee2mqtt/attic' && x.origin === 'auto') ? true : undefined;
    });
    const unknown = await cloud(['sensors', 'promote', 'gw-b', 'zigbee2mqtt/cellar']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no auto-registered sensor on zigbee2mqtt\/cellar .*zigbee2mqtt\/attic/);
    const r = await cloud(['sensors', 'promote', 'gw-b', 'zigbee2mqtt/attic']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/promoted zigbee2mqtt\/attic \(decoder zigbee2mqtt, station attic\)/);
    const revision = Number(/revision (\d+)/.exec(r.stdout)?.[1]);
    const s = await statusWhen('gw-b', 'the promoted sensor', (x) => x.config?.revision === revision);
    expect(s.sensors?.filter((x) => x.topic === 'zigbee2mqtt/attic').map((x) => x.origin)).toEqual([
      'central',
    ]);
    await client.publishAsync('zigbee2mqtt/attic', JSON.stringify({ temperature: 16 }), { qos: 1 });
    await waitFor('the promoted sensor decoding', async () => {
      const { rows } = await db.query(
        "SELECT 1 FROM observations WHERE edge = 'gw-b' AND station = 'attic' AND value = 16",
      );
      return rows.length > 0 ? true : undefined;
    });
  });

  it('keeps both of two concurrent changes of one key (conditional writes), and removes by topic', async () => {
    const topics = ['c1/+station', 'c2/+station', 'c3/+station', 'c4/+station'];
    const results = await Promise.all(
      topics.map((topic) => cloud(['sensors', 'add', '--all', '--topic', topic, '--decoder', 'json'])),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const all = JSON.parse((await cloud(['sensors', 'list', '--all', '--json'])).stdout) as {
      value: { sensors: { topic: string }[] };
    };
    expect(all.value.sensors.map((x) => x.topic).sort()).toEqual(['tele/+station/SENSOR', ...topics].sort());
    for (const topic of topics)
      expect((await cloud(['sensors', 'remove', '--all', '--topic', topic])).code).toBe(0);
    const missing = await cloud(['sensors', 'remove', '--all', '--topic', 'c1/+station']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/all has no sensor on c1\/\+station/);
    const after = JSON.parse((await cloud(['sensors', 'list', '--all', '--json'])).stdout) as {
      value: { sensors: { topic: string }[] };
    };
    expect(after.value.sensors.map((x) => x.topic)).toEqual(['tele/+station/SENSOR']);
  });

  it('boots with its last applied central config when NATS is unreachable', async () => {
    const a = agent('gw-a');
    const applied = (await a.status()) as Status;
    await a.stop();
    a.writeConfig({
      ...configs.get('gw-a'),
      nats: { ...(configs.get('gw-a')?.nats as object), servers: ['nats://127.0.0.1:1'] },
    });
    await a.start();
    const offline = await statusWhen('gw-a', 'started', () => true);
    expect(offline.uplink).toBe('disconnected');
    expect(offline.config?.revision).toBe(applied.config?.revision);
    expect(offline.config?.appliedAt).toBe(applied.config?.appliedAt);
    expect(centralTopics(offline)).toEqual(centralTopics(applied));
    // A reading on a central topic is taken into the buffer, not rejected.
    const { client } = await sensorClient('gw-a');
    await client.publishAsync('zigbee2mqtt/greenhouse3', JSON.stringify({ temperature: 17 }), { qos: 1 });
    await statusWhen('gw-a', 'the reading buffered', (s) => s.buffer.depth === 1 && s.rejected === 0);
    await client.endAsync();
    // It stops cleanly though its uplink never connected (nothing waits for the connection).
    await a.stop();
    expect(a.process?.child.signalCode).toBeNull();
    expect(a.process?.child.exitCode).toBe(0);
    // Back online, it is delivered.
    a.writeConfig(configs.get('gw-a') as Record<string, unknown>);
    await a.start();
    expect(await readingsIn('gw-a', 'greenhouse3')).toEqual([{ variable: 'air_temperature', value: 17 }]);
  });
});
