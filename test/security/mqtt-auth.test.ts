import { createEdgeAgent, type EdgeAgent, parseEdgeConfig } from '@fieldbeam/edge';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type NatsServer,
  readMetric,
  readObsStream,
  startNatsServer,
  type TempDir,
  tempDir,
} from '../harness/index.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let nats: NatsServer;
let dir: TempDir;
let agent: EdgeAgent;

const metric = (name: string, label: string) => readMetric(agent.httpPort, name, label);

beforeAll(async () => {
  nats = await startNatsServer({ streams: true });
  dir = tempDir();
  agent = await createEdgeAgent(
    parseEdgeConfig({
      edge: 'gw-auth',
      data_dir: dir.path,
      nats: { servers: [nats.url] },
      mqtt: {
        host: '127.0.0.1',
        port: 0,
        users: [{ username: 'greenhouse', password: 'greenhouse-secret', publish: ['sensors/greenhouse/#'] }],
      },
      http: { host: '127.0.0.1', port: 0 },
      sensors: [
        {
          topic: 'sensors/+station/t',
          decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
        },
      ],
    }),
    log,
  );
});
afterAll(async () => {
  await agent?.close();
  await nats?.close();
  dir?.remove();
});

const url = () => `mqtt://127.0.0.1:${agent.mqttPort}`;

describe('embedded broker accounts and ACLs', () => {
  it('refuses a wrong password and an anonymous client, and counts them', async () => {
    await expect(
      mqtt.connectAsync(url(), { username: 'greenhouse', password: 'nope', reconnectPeriod: 0 }),
    ).rejects.toThrow(/Not authorized|Bad username or password/i);
    await expect(mqtt.connectAsync(url(), { reconnectPeriod: 0 })).rejects.toThrow(
      /Not authorized|Bad username/i,
    );
    expect(await metric('fb_edge_mqtt_denied_total', 'kind="connect"')).toBe(2);
  });

  it('accepts the user on its topics and refuses (without ack) a publish outside them', async () => {
    const c = await mqtt.connectAsync(url(), {
      username: 'greenhouse',
      password: 'greenhouse-secret',
      reconnectPeriod: 0,
    });
    await c.publishAsync('sensors/greenhouse/t', '19.5', { qos: 1 });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    const outside = c.publishAsync('sensors/barn/t', '99', { qos: 1 });
    await closed;
    let acked = false;
    // It is never acknowledged; ending the client below rejects it.
    void outside.then(
      () => {
        acked = true;
      },
      () => {},
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(acked).toBe(false);
    c.end(true);
    expect(await metric('fb_edge_mqtt_denied_total', 'kind="publish"')).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    const values = (await readObsStream(nats.url)).observations.map((o) => `${o.station}:${o.value}`);
    expect(values).toEqual(['greenhouse:19.5']);
  });
});
