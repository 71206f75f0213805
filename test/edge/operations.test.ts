import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import {
  natsPerTest,
  readMetric,
  readObsStream,
  startEdgeProcess,
  startMosquitto,
  waitFor,
} from '../harness/index.js';

const servers = natsPerTest();

const temperature = {
  topic: 'a/+station/t',
  decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
};
const humidity = {
  topic: 'b/+station/h',
  decoder: { type: 'number', variable: 'relative_humidity', unit: '%' },
};

describe('operating the edge agent', () => {
  it('SIGHUP adds a sensor without dropping the MQTT connection or the buffer', async () => {
    const base = { edge: 'gw-hup', nats: { servers: [servers.nats.url] } };
    const edge = await startEdgeProcess(servers.dir.path, { ...base, sensors: [temperature] });
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${edge.mqttPort}`);
    let drops = 0;
    client.on('close', () => drops++);
    try {
      await client.publishAsync('a/barn/t', '20.5', { qos: 1 });
      await client.publishAsync('b/barn/h', '55', { qos: 1 }); // no sensor yet
      expect(await readMetric(edge.httpPort, 'fb_edge_unmatched_topic_total')).toBe(1);

      edge.writeConfig({ ...base, sensors: [temperature, humidity] });
      edge.signal('SIGHUP');
      await waitFor('the new sensor', async () => {
        await client.publishAsync('b/barn/h', '56', { qos: 1 });
        const s = await readObsStream(servers.nats.url);
        return s.observations.some((o) => o.variable === 'relative_humidity') ? s : undefined;
      });
      const s = await readObsStream(servers.nats.url);
      expect(s.observations.find((o) => o.variable === 'air_temperature')?.value).toBe(20.5);
      expect(s.observations.some((o) => o.variable === 'relative_humidity' && o.value === 56)).toBe(true);
      expect(drops).toBe(0);
      expect(client.connected).toBe(true);
    } finally {
      await client.endAsync();
      await edge.stop();
    }
  }, 60_000);

  it('an unreadable buffer file is moved aside and the agent still comes up and forwards', async () => {
    const dataDir = join(servers.dir.path, 'data');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'gw-bad-file.buffer.sqlite'), Buffer.alloc(8192, 0xa5));
    const edge = await startEdgeProcess(servers.dir.path, {
      edge: 'gw-bad-file',
      nats: { servers: [servers.nats.url] },
      sensors: [temperature],
    });
    try {
      expect(await readMetric(edge.httpPort, 'fb_edge_buffer_file_recovered_total')).toBe(1);
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${edge.mqttPort}`);
      await client.publishAsync('a/x/t', '1.5', { qos: 1 });
      await client.endAsync();
      await waitFor('the reading upstream', async () =>
        (await readObsStream(servers.nats.url)).observations.length === 1 ? true : undefined,
      );
    } finally {
      await edge.stop();
    }
  }, 60_000);

  it('external broker (mosquitto): persistent session keeps readings published while the agent is down', async () => {
    const mosquitto = await startMosquitto();
    const edge = await startEdgeProcess(servers.dir.path, {
      edge: 'gw-ext',
      nats: { servers: [servers.nats.url] },
      mqtt: { mode: 'external', url: mosquitto.url },
      sensors: [temperature],
    });
    const sensor = await mqtt.connectAsync(mosquitto.url, { clientId: 'sensor-1' });
    const subscribed = async () => {
      const s = (await edge.status()) as unknown as { mqtt: { ready: boolean } };
      return s.mqtt.ready ? true : undefined;
    };
    try {
      // Until the agent has subscribed once, the broker has no session to queue for.
      await waitFor('the agent to subscribe', subscribed);
      for (let i = 0; i < 100; i++) await sensor.publishAsync('a/field/t', String(i), { qos: 1 });
      await waitFor('first readings', async () =>
        (await readObsStream(servers.nats.url)).observations.length === 100 ? true : undefined,
      );
      await edge.stop();
      for (let i = 100; i < 200; i++) await sensor.publishAsync('a/field/t', String(i), { qos: 1 });
      await edge.restart();
      const s = await waitFor('readings sent while the agent was down', async () => {
        const c = await readObsStream(servers.nats.url);
        return c.observations.length >= 200 ? c : undefined;
      });
      expect(new Set(s.observations.map((o) => o.value))).toEqual(
        new Set(Array.from({ length: 200 }, (_, i) => i)),
      );
    } finally {
      await sensor.endAsync();
      await edge.stop();
      await mosquitto.close();
    }
  }, 90_000);
});
