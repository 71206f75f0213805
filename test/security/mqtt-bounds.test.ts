import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EdgeAgentProcess,
  fixedHeader,
  metricSum,
  type NatsServer,
  processMemory,
  publishPacket,
  rawClient,
  rawLogin,
  startEdgeAgentProcess,
  startNatsServer,
  streamAnnounced,
  type TempDir,
  tempDir,
} from '../harness/index.js';

/**
 * The embedded broker against clients that try to fill the agent's memory or cut others off: the
 * agent runs as its own process, so its resident memory is what the test measures.
 */
let nats: NatsServer;
let dir: TempDir;
let agent: EdgeAgentProcess;

const MiB = 1024 * 1024;
const users = [
  { username: 'greenhouse', password: 'greenhouse-secret', publish: ['sensors/greenhouse/#'] },
  { username: 'barn', password: 'barn-secret-1', publish: ['sensors/barn/#'] },
  { username: 'wide', password: 'wide-secret-1', publish: ['#'], subscribe: ['#'] },
];

beforeAll(async () => {
  nats = await startNatsServer({ streams: true });
  dir = tempDir();
  agent = await startEdgeAgentProcess({
    dir: dir.path,
    config: {
      edge: 'gw-bounds',
      nats: { servers: [nats.url] },
      mqtt: {
        users,
        max_pending_connections: 8,
        connect_timeout_ms: 3000,
        max_retained: 20,
        max_retained_bytes: MiB,
      },
      sensors: [
        {
          topic: 'sensors/+station/t',
          decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
        },
        { topic: 'kept/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
      ],
    },
  });
});
afterAll(async () => {
  await agent?.stop();
  await nats?.close();
  dir?.remove();
});

const pid = () => {
  const p = agent.process?.pid;
  if (p === undefined) throw new Error('agent not running');
  return p;
};
const metric = async (name: string, labels = '') =>
  metricSum((await agent.metrics()) ?? new Map(), name, labels);
const refused = (reason: string) => metric('fb_edge_mqtt_refused_total', `reason="${reason}"`);
const login = (username: string, password: string, clientId?: string) =>
  mqtt.connectAsync(agent.mqttUrl, {
    username,
    password,
    reconnectPeriod: 0,
    ...(clientId ? { clientId } : {}),
  });

describe('embedded broker bounds', () => {
  it('cuts a CONNECT announcing 100 MiB at its header: socket closed, memory not taken', async () => {
    const before = processMemory(pid()).rss;
    const clients = await Promise.all([0, 1, 2].map(() => rawClient(agent.mqttPort)));
    // Each writes up to 24 MiB of the announced body; the old broker buffered all of it.
    await Promise.all(clients.map((c) => streamAnnounced(c, fixedHeader(0x10, 100 * MiB), 24 * MiB)));
    const closed = await Promise.all(clients.map((c) => c.closed(10_000)));
    expect(closed).toEqual([true, true, true]);
    const grown = processMemory(pid()).rss - before;
    expect(grown).toBeLessThan(8 * MiB);
    expect(await refused('connect_too_large')).toBe(3);
    expect(agent.running).toBe(true);
  });

  it('refuses an oversized PUBLISH of a logged-in user before reading its body', async () => {
    const c = await rawLogin(agent.mqttPort, 'big-1', 'greenhouse', 'greenhouse-secret');
    const before = processMemory(pid()).rss;
    await streamAnnounced(c, fixedHeader(0x32, 64 * MiB), 32 * MiB);
    expect(await c.closed(10_000)).toBe(true);
    expect(processMemory(pid()).rss - before).toBeLessThan(8 * MiB);
    expect(await refused('packet_too_large')).toBe(1);
    // The connection was closed without a PUBACK: only the CONNACK came back.
    expect(c.received().length).toBe(4);
  });

  it('bounds connections that never log in, in number and in time', async () => {
    const idle = await Promise.all(Array.from({ length: 12 }, () => rawClient(agent.mqttPort)));
    const closed = await Promise.all(idle.map((c) => c.closed(15_000)));
    // All are closed: 4 at once (more than 8 pending), the 8 others when their connect timeout ran out.
    expect(closed.every(Boolean)).toBe(true);
    expect(await refused('pending_limit')).toBe(4);
    expect(await refused('connect_timeout')).toBe(8);
    // A sensor can still log in afterwards.
    const ok = await login('greenhouse', 'greenhouse-secret');
    await ok.endAsync();
  });

  it("refuses a client id held by another user's connected client, and keeps that client", async () => {
    const owner = await login('greenhouse', 'greenhouse-secret', 'greenhouse-1');
    let ownerClosed = false;
    owner.on('close', () => {
      ownerClosed = true;
    });
    for (let i = 0; i < 3; i++) {
      await expect(login('barn', 'barn-secret-1', 'greenhouse-1')).rejects.toThrow(/Not authorized/i);
    }
    // The owner still publishes on its connection and is acknowledged.
    await owner.publishAsync('sensors/greenhouse/t', '20.5', { qos: 1 });
    expect(ownerClosed).toBe(false);
    expect(await refused('client_id_taken')).toBe(3);
    // The same user may take its own id over (a sensor back over a half-open connection).
    const again = await login('greenhouse', 'greenhouse-secret', 'greenhouse-1');
    await again.endAsync();
    owner.end(true);
  });

  it('refuses and counts a topic that is not UTF-8, a $SYS topic and a wildcard topic', async () => {
    const cases: [Buffer | string, string][] = [
      [Buffer.concat([Buffer.from('sensors/greenhouse/'), Buffer.from([0xff, 0xfe])]), 'invalid_topic'],
      ['$SYS/broker/fake', 'sys_topic'],
      ['sensors/greenhouse/#', 'wildcard_topic'],
    ];
    for (const [topic, reason] of cases) {
      const c = await rawLogin(agent.mqttPort, `utf-${reason}`, 'wide', 'wide-secret-1');
      c.socket.write(publishPacket(topic, Buffer.from('1')));
      expect(await c.closed(10_000)).toBe(true);
      // No PUBACK (0x40): only the CONNACK came back.
      expect(c.received().length).toBe(4);
      expect(await refused(reason)).toBe(1);
    }
  });

  it('keeps the unmatched-topic metric to a bounded set of series after 3,000 unique topics', async () => {
    const c = await login('wide', 'wide-secret-1');
    for (let i = 0; i < 3000; i++) c.publish(`unknown-${i}/x`, '1', { qos: 0 });
    // QoS 1 after the QoS 0 messages: acknowledged once all before it were handled.
    await c.publishAsync('unknown-last/x', '1', { qos: 1 });
    await c.endAsync();
    const metrics = (await agent.metrics()) ?? new Map();
    const series = [...metrics.keys()].filter((k) => k.startsWith('fb_edge_unmatched_topic_total{'));
    expect(metricSum(metrics, 'fb_edge_unmatched_topic_total')).toBeGreaterThanOrEqual(3001);
    expect(series.length).toBeLessThanOrEqual(33);
    expect(series.some((k) => k.includes('prefix="other"'))).toBe(true);
  });

  it('retains only messages a sensor takes, within the retained budget', async () => {
    const c = await login('wide', 'wide-secret-1');
    const big = Buffer.alloc(20 * 1024, 0x41);
    // Unmatched topics: never retained.
    for (let i = 0; i < 100; i++) await c.publishAsync(`flood-${i}/state`, big, { qos: 1, retain: true });
    // Matched topics: at most max_retained (20) kept.
    for (let i = 0; i < 50; i++) await c.publishAsync(`kept/s${i}/t`, `${i}`, { qos: 1, retain: true });
    await c.endAsync();
    expect(await metric('fb_edge_mqtt_not_retained_total', 'reason="unmatched"')).toBe(100);
    expect(await metric('fb_edge_mqtt_not_retained_total', 'reason="limit"')).toBe(30);

    const sub = await login('wide', 'wide-secret-1');
    const retained: string[] = [];
    sub.on('message', (topic, _payload, packet) => {
      if (packet.retain) retained.push(topic);
    });
    await sub.subscribeAsync('#', { qos: 0 });
    // Until the 20 kept have come (or 10 s), and a little longer for any beyond them.
    for (let i = 0; i < 100 && retained.length < 20; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    await sub.endAsync();
    expect(retained.filter((t) => t.startsWith('flood-'))).toEqual([]);
    expect(retained.length).toBe(20);
  });
});
