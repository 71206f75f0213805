import { join } from 'node:path';
import { type BufferThreadHandlers, parseEdgeConfig, SqliteOutbox, startBufferThread } from '@fieldbeam/edge';
import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type NatsServer,
  readObsStream,
  startEdgeAgentProcess,
  startNatsServer,
  startTcpProxy,
  type TcpProxy,
  type TempDir,
  tempDir,
  waitFor,
} from '../harness/index.js';

// A SIGTERM while the uplink is blackholed (packets vanish, the usual cellular failure): every NATS
// client's goodbye waits on a server that never answers. The agent must still stop cleanly (exit 0,
// before run-command's 15 s safety stop, which exits 1), lose nothing it acknowledged, and send what
// stayed in the buffer after its restart.

let nats: NatsServer;
let proxy: TcpProxy;
let dir: TempDir;

beforeEach(async () => {
  dir = tempDir();
  nats = await startNatsServer({ streams: true });
  proxy = await startTcpProxy(nats.port);
});
afterEach(async () => {
  await proxy?.close();
  await nats?.close();
  dir?.remove();
});

const values = async () =>
  (await readObsStream(nats.url)).observations.map((o) => o.value as number).sort((a, b) => a - b);

describe('SIGTERM during an uplink blackhole', () => {
  for (const thread of [true, false]) {
    it(`exits 0 having kept what it acknowledged, sent once after the restart (forward.thread ${thread})`, async () => {
      const agent = await startEdgeAgentProcess({
        dir: dir.path,
        logLevel: 'info',
        config: {
          edge: 'gw-stop',
          nats: { servers: [`nats://127.0.0.1:${proxy.port}`] },
          forward: { thread },
          sensors: [{ topic: 's/+station/t', decoder: { type: 'number', variable: 'x:seq', unit: '1' } }],
        },
      });
      const c = await mqtt.connectAsync(agent.mqttUrl, { reconnectPeriod: 0 });
      try {
        await c.publishAsync('s/a/t', '1', { qos: 1 });
        await waitFor('the first reading in JetStream', async () =>
          (await values()).length === 1 ? true : undefined,
        );
        await proxy.setMode('blackhole');
        // Acknowledged (PUBACK after the commit) while nothing reaches the server: the forwarder
        // publishes some into the void and waits for acks that never come.
        for (let i = 2; i <= 20; i++) await c.publishAsync('s/a/t', String(i), { qos: 1 });
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        await c.endAsync(true);
      }

      const p = agent.process;
      if (!p) throw new Error('no agent process');
      // Past run-command's safety stop (which exits 1) the harness kills it: exit code 0 says it
      // stopped by itself, before either.
      await p.stop(30_000);
      const log = p.output();
      expect(p.child.exitCode, log.slice(-3000)).toBe(0);
      expect(log).toContain('"msg":"stopped"');
      expect(log).not.toContain('BUFFER THREAD FAILED');
      expect(log).not.toContain('did not stop in time');

      // The link back, the agent started again: every acknowledged reading reaches JetStream once.
      await proxy.setMode('pass');
      await agent.start();
      try {
        const all = Array.from({ length: 20 }, (_, i) => i + 1);
        await waitFor(
          'every acknowledged reading in JetStream',
          async () => ((await values()).length >= all.length ? true : undefined),
          60_000,
        );
        const contents = await readObsStream(nats.url);
        expect(contents.duplicateIds.size).toBe(0);
        expect(await values()).toEqual(all);
      } finally {
        await agent.stop();
      }
    }, 120_000);
  }
});

describe('the buffer thread closing behind a blackholed uplink', () => {
  it('commits what is queued, stops without a fatal, and keeps the unsent rows in its file', async () => {
    const dataDir = join(dir.path, 'data');
    const config = parseEdgeConfig(
      { edge: 'gw-bt', data_dir: dataDir, nats: { servers: [`nats://127.0.0.1:${proxy.port}`] } },
      {},
    );
    const fatal: Error[] = [];
    const sent: number[] = [];
    const h: BufferThreadHandlers = {
      outbox: {
        corruptFile: () => {},
        rejectsDropped: () => {},
        deliveryClientsForgotten: () => {},
        retainedTopicsForgotten: () => {},
        dropped: () => {},
        checkpointFailed: () => {},
      },
      uplink: { sent: (n) => sent.push(n), unexpectedDuplicate: () => {}, error: () => {} },
      onFatal: (err) => fatal.push(err),
    };
    const outbox = await startBufferThread(config, 64 * 1024 * 1024, h);
    const obs = (i: number) => ({
      id: `gw-bt:${i}`.padEnd(20, '0'),
      edge: 'gw-bt',
      station: 's',
      source: 'mqtt' as const,
      variable: 'x:seq',
      value: i,
      unit: '1',
      time: new Date(1_700_000_000_000 + i).toISOString(),
      received: new Date(1_700_000_000_000 + i).toISOString(),
    });
    await outbox.append([obs(1)]);
    await waitFor('the first reading sent', () => (sent.length > 0 ? true : undefined));
    await proxy.setMode('blackhole');
    await outbox.append([obs(2), obs(3)]);
    // Queued when close comes: committed by it, as its source waits for the answer.
    const last = outbox.append([obs(4)]);
    await outbox.close();
    await last;
    expect(fatal).toEqual([]);

    const reopened = new SqliteOutbox({
      path: join(dataDir, 'gw-bt.buffer.sqlite'),
      capacityBytes: 64 * 1024 * 1024,
      policy: 'block',
      commitWindowMs: 2,
      synchronous: 'FULL',
      keepRejects: 10,
    });
    try {
      expect(reopened.stats().depth).toBe(3);
    } finally {
      await reopened.close();
    }
  }, 60_000);
});
