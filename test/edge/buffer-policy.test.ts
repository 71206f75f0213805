import { createEdgeAgent, type EdgeAgent, parseEdgeConfig } from '@fieldbeam/edge';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type NatsServer,
  readObsStream,
  startMqttLoad,
  startNatsServer,
  startTcpProxy,
  type TcpProxy,
  type TempDir,
  tempDir,
  waitFor,
} from '../harness/index.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const N = 3000;
const CAPACITY = 200_000;
let nats: NatsServer;
let proxy: TcpProxy;
let dir: TempDir;

beforeEach(async () => {
  nats = await startNatsServer({ streams: true });
  proxy = await startTcpProxy(nats.port);
  dir = tempDir();
});
afterEach(async () => {
  await proxy?.close();
  await nats?.close();
  dir?.remove();
});

const startEdge = (policy: 'block' | 'drop_oldest'): Promise<EdgeAgent> =>
  createEdgeAgent(
    parseEdgeConfig({
      edge: `gw-${policy.replace('_', '-')}`,
      data_dir: dir.path,
      nats: { servers: [`nats://127.0.0.1:${proxy.port}`], ack_timeout_ms: 1000 },
      mqtt: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      buffer: { capacity_bytes: CAPACITY, policy },
      sensors: [{ topic: 'load/+station/v', decoder: { type: 'number', variable: 'x:seq', unit: '1' } }],
    }),
    log,
  );

describe('full buffer during a long cut', () => {
  it('block: stops acknowledging at capacity, loses nothing, resumes when the uplink returns', async () => {
    await proxy.setMode('refuse');
    const edge = await startEdge('block');
    const load = await startMqttLoad({
      url: `mqtt://127.0.0.1:${edge.mqttPort}`,
      rate: 2000,
      maxMessages: N,
      topic: () => 'load/s1/v',
      payload: (seq) => String(seq),
      maxInFlight: 200,
    });
    try {
      await waitFor('the load to stall', async () => {
        const before = load.ackedCount;
        await new Promise((r) => setTimeout(r, 500));
        return before > 0 && load.ackedCount === before ? true : undefined;
      });
      const stalledAt = load.ackedCount;
      expect(stalledAt).toBeLessThan(N);
      const s = edge.outbox.stats();
      expect(s.bytes).toBeLessThanOrEqual(CAPACITY);
      expect(s.depth).toBe(stalledAt);
      expect(s.dropped).toBe(0);

      await proxy.setMode('pass');
      await waitFor('every reading acknowledged', () => (load.ackedCount === N ? true : undefined), 60_000);
      const result = await load.stop();
      await waitFor('drain', () => (edge.outbox.stats().depth === 0 ? true : undefined), 60_000);
      const contents = await readObsStream(nats.url);
      expect(contents.duplicateIds.size).toBe(0);
      expect(new Set(contents.observations.map((o) => o.value))).toEqual(new Set(result.acked));
      expect(contents.observations).toHaveLength(N);
    } finally {
      await load.stop(1000);
      await edge.close();
    }
  }, 120_000);

  it('drop_oldest: keeps acknowledging and drops exactly what its counter says, oldest first', async () => {
    await proxy.setMode('refuse');
    const edge = await startEdge('drop_oldest');
    const load = await startMqttLoad({
      url: `mqtt://127.0.0.1:${edge.mqttPort}`,
      rate: 2000,
      maxMessages: N,
      topic: () => 'load/s1/v',
      payload: (seq) => String(seq),
    });
    try {
      await waitFor('every reading acknowledged', () => (load.ackedCount === N ? true : undefined), 60_000);
      const result = await load.stop();
      const dropped = edge.outbox.stats().dropped;
      expect(dropped).toBeGreaterThan(0);
      expect(edge.outbox.stats().bytes).toBeLessThanOrEqual(CAPACITY);
      const metrics = await (await fetch(`http://127.0.0.1:${edge.httpPort}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^fb_edge_buffer_dropped_total ${dropped}$`, 'm'));

      await proxy.setMode('pass');
      await waitFor('drain', () => (edge.outbox.stats().depth === 0 ? true : undefined), 60_000);
      const contents = await readObsStream(nats.url);
      expect(contents.duplicateIds.size).toBe(0);
      expect(contents.observations.length).toBe(N - dropped);
      const kept = contents.observations.map((o) => o.value as number).sort((a, b) => a - b);
      // What was dropped is the oldest: everything kept is newer than everything lost,
      // except rows that were already in flight when the buffer filled (spared on purpose).
      const lost = [...result.acked].filter((v) => !kept.includes(v));
      expect(lost).toHaveLength(dropped);
      const newestLost = Math.max(...lost);
      const keptOlder = kept.filter((v) => v < newestLost);
      expect(keptOlder.length).toBeLessThanOrEqual(500 * 8);
    } finally {
      await load.stop(1000);
      await edge.close();
    }
  }, 120_000);
});
