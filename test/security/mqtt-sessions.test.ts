import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EdgeAgentProcess,
  metricSum,
  type NatsServer,
  startEdgeAgentProcess,
  startNatsServer,
  type TempDir,
  tempDir,
} from '../harness/index.js';

/**
 * The deliveries the agent remembers per client id (to recognise a re-send after a lost PUBACK) are
 * bounded in number: a flood of new client ids makes it forget the least recently active ones.
 */
let nats: NatsServer;
let dir: TempDir;
let agent: EdgeAgentProcess;

beforeAll(async () => {
  nats = await startNatsServer({ streams: true });
  dir = tempDir();
  agent = await startEdgeAgentProcess({
    dir: dir.path,
    config: {
      edge: 'gw-sessions',
      nats: { servers: [nats.url] },
      mqtt: { max_delivery_clients: 20 },
      sensors: [
        {
          topic: 'sensors/+station/t',
          decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
        },
      ],
    },
  });
});
afterAll(async () => {
  await agent?.stop();
  await nats?.close();
  dir?.remove();
});

const forgotten = async () =>
  metricSum((await agent.metrics()) ?? new Map(), 'fb_edge_mqtt_delivery_clients_forgotten_total');

describe('remembered deliveries per client id', () => {
  it('forgets the least recently active client ids past mqtt.max_delivery_clients, and counts them', async () => {
    for (let i = 0; i < 60; i++) {
      const c = await mqtt.connectAsync(agent.mqttUrl, {
        clientId: `sensor-${i}`,
        clean: false,
        reconnectPeriod: 0,
      });
      await c.publishAsync(`sensors/s${i}/t`, `${i}`, { qos: 1 });
      await c.endAsync();
    }
    // 60 client ids, at most 20 remembered: at least 40 forgotten.
    expect(await forgotten()).toBeGreaterThanOrEqual(40);
    expect(await forgotten()).toBeLessThanOrEqual(60);
  });
});
