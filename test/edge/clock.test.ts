import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createEdgeAgent, parseEdgeConfig } from '@fieldbeam/edge';
import { observationId } from '@fieldbeam/protocol';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type NatsServer,
  readObsStream,
  startNatsServer,
  startTcpProxy,
  type TcpProxy,
  type TempDir,
  tempDir,
  waitFor,
} from '../harness/index.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let nats: NatsServer;
let proxy: TcpProxy;
let dir: TempDir;

beforeAll(async () => {
  nats = await startNatsServer({ streams: true });
  proxy = await startTcpProxy(nats.port);
  dir = tempDir();
});
afterAll(async () => {
  await proxy?.close();
  await nats?.close();
  dir?.remove();
});

describe('wall clock not yet synchronised', () => {
  it('flags receipt-time readings, and re-stamps those still buffered once the clock syncs', async () => {
    const flag = join(dir.path, 'synced');
    await proxy.setMode('refuse');
    const agent = await createEdgeAgent(
      parseEdgeConfig({
        edge: 'gw-clock',
        data_dir: dir.path,
        nats: { servers: [`nats://127.0.0.1:${proxy.port}`] },
        mqtt: { host: '127.0.0.1', port: 0 },
        http: { host: '127.0.0.1', port: 0 },
        clock: { sync_check: `file:${flag}`, check_interval_ms: 100 },
        sensors: [
          { topic: 's/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
        ],
      }),
      log,
    );
    try {
      expect(agent.status().clock).toBe('unsynced');
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`);
      for (let i = 0; i < 10; i++) await c.publishAsync('s/x/t', String(i), { qos: 1 });
      await c.endAsync();

      writeFileSync(flag, '');
      await waitFor('the clock to be seen as synced', () =>
        agent.status().clock === 'synced' ? true : undefined,
      );
      await proxy.setMode('pass');
      const contents = await waitFor('readings upstream', async () => {
        const s = await readObsStream(nats.url);
        return s.observations.length >= 10 ? s : undefined;
      });
      const restamped = contents.observations.filter((o) => o.quality?.includes('clock_restamped'));
      expect(restamped.map((o) => o.value).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      for (const o of restamped) {
        expect(o.quality).not.toContain('clock_unsynced');
        expect(o.id).toBe(observationId({ ...o }));
      }
    } finally {
      await agent.close();
    }
  }, 60_000);
});
