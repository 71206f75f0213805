import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import {
  type EdgeProcess,
  natsPerTest,
  parsePrometheus,
  readObsStream,
  startEdgeProcess,
  startMosquitto,
  waitFor,
} from '../harness/index.js';

/**
 * Readings without a sensor time are stamped with the receipt time, so an MQTT message sent again
 * after its PUBACK was lost would be a new reading with a new id. The agent remembers which
 * (client, packet id, content) it committed and acknowledges such a re-delivery without storing it.
 */

const servers = natsPerTest();

const sensors = [
  { topic: 'rd/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
];

async function metrics(edge: EdgeProcess): Promise<{ readings: number; duplicates: number }> {
  const m = parsePrometheus(await (await fetch(`http://127.0.0.1:${edge.httpPort}/metrics`)).text());
  return {
    readings: m.get('fb_edge_readings_total{source="mqtt"}') ?? 0,
    duplicates: m.get('fb_edge_mqtt_duplicate_total') ?? 0,
  };
}

async function mqttStatus(edge: EdgeProcess): Promise<{ ready: boolean; duplicates: number }> {
  return ((await edge.status()) as unknown as { mqtt: { ready: boolean; duplicates: number } }).mqtt;
}

/**
 * The values of a station's distinct observations in JetStream, once the agent's buffer has drained.
 * Distinct by id, as the collector stores them: after a kill -9 the uplink may send a batch again.
 */
async function storedValues(edge: EdgeProcess, station: string): Promise<unknown[]> {
  await waitFor('the buffer to drain', async () =>
    (await edge.status()).buffer.depth === 0 ? true : undefined,
  );
  const contents = await readObsStream(servers.nats.url);
  const byId = new Map(
    contents.observations.filter((o) => o.station === station).map((o) => [o.id, o.value]),
  );
  return [...byId.values()].sort();
}

/** mqtt.js with every QoS 1 message on the same packet id (legal: the id is free again once acked). */
const fixedPacketId = (id: number) => ({
  allocate: () => id,
  getLastAllocated: () => id,
  register: () => true,
  deallocate: () => {},
  clear: () => {},
});

/**
 * A TCP relay in front of `targetPort` that can swallow what one side sends: the way to lose a PUBACK
 * after the commit, as a kill -9 between the two does.
 */
async function startRelay(targetPort: number) {
  const swallow = { toServer: false, toClient: false };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (b) => {
      if (!swallow.toServer) upstream.write(b);
    });
    upstream.on('data', (b) => {
      if (!swallow.toClient) client.write(b);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    swallow,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('MQTT re-delivery of a committed message', () => {
  it('a DUP re-send is acknowledged and not stored; a new message on the same packet id is stored', async () => {
    const edge = await startEdgeProcess(servers.dir.path, {
      edge: 'gw-rd1',
      nats: { servers: [servers.nats.url] },
      sensors,
    });
    const url = `mqtt://127.0.0.1:${edge.mqttPort}`;
    const session = { clientId: 'rd-sensor', reconnectPeriod: 0, messageIdProvider: fixedPacketId(42) };
    let client = await mqtt.connectAsync(url, { ...session, clean: false });
    try {
      await client.publishAsync('rd/s1/t', '21.5', { qos: 1 });
      expect(await metrics(edge)).toEqual({ readings: 1, duplicates: 0 });

      // Packet 42 again with DUP, same content: a re-send of the message just committed.
      await client.publishAsync('rd/s1/t', '21.5', { qos: 1, dup: true });
      expect(await metrics(edge)).toEqual({ readings: 1, duplicates: 1 });

      // Packet 42 again without DUP on the same connection: the client reused the id after its PUBACK,
      // so this is a new reading that happens to have the same value.
      await client.publishAsync('rd/s1/t', '21.5', { qos: 1 });
      expect(await metrics(edge)).toEqual({ readings: 2, duplicates: 1 });

      // A new connection of the persistent session, packet 42 first thing, same content, no DUP: how
      // mqtt.js sends its unacknowledged messages again, so taken for a re-send.
      await client.endAsync();
      client = await mqtt.connectAsync(url, { ...session, clean: false });
      await client.publishAsync('rd/s1/t', '21.5', { qos: 1 });
      expect(await metrics(edge)).toEqual({ readings: 2, duplicates: 2 });

      // A clean session has nothing to re-send (MQTT 3.1.1 §3.1.2.4): without DUP it is a new reading.
      await client.endAsync();
      client = await mqtt.connectAsync(url, { ...session, clean: true });
      await client.publishAsync('rd/s1/t', '21.5', { qos: 1 });
      expect(await metrics(edge)).toEqual({ readings: 3, duplicates: 2 });
      expect((await mqttStatus(edge)).duplicates).toBe(2);

      expect(await storedValues(edge, 's1')).toEqual([21.5, 21.5, 21.5]);
    } finally {
      await client.endAsync(true).catch(() => {});
      await edge.stop();
    }
  });

  it('kill -9 after the commit and before the PUBACK: mqtt.js sends it again and it is stored once', async () => {
    const edge = await startEdgeProcess(servers.dir.path, {
      edge: 'gw-rd2',
      nats: { servers: [servers.nats.url] },
      sensors,
    });
    const relay = await startRelay(edge.mqttPort);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${relay.port}`, {
      clientId: 'rd-kill',
      clean: false,
      reconnectPeriod: 200,
    });
    client.on('error', () => {});
    try {
      await client.publishAsync('rd/k1/t', '1', { qos: 1 });
      relay.swallow.toClient = true;
      let acked = false;
      const second = client.publishAsync('rd/k1/t', '2', { qos: 1 }).then(() => {
        acked = true;
      });
      await waitFor('the second reading to be committed', async () =>
        (await metrics(edge)).readings === 2 ? true : undefined,
      );
      expect(acked).toBe(false);
      await edge.kill();
      relay.swallow.toClient = false;
      await edge.restart();
      // mqtt.js reconnects and sends message 2 again, with its packet id and without DUP.
      await second;
      await client.publishAsync('rd/k1/t', '3', { qos: 1 });
      // Counters of the restarted process: only reading 3 was stored by it.
      expect(await metrics(edge)).toEqual({ readings: 1, duplicates: 1 });
      expect((await mqttStatus(edge)).duplicates).toBe(1);
      expect(await storedValues(edge, 'k1')).toEqual([1, 2, 3]);
    } finally {
      await client.endAsync(true).catch(() => {});
      await relay.close();
      await edge.stop();
    }
  });

  it('external broker: kill -9 before the PUBACK reaches mosquitto; its DUP re-delivery is stored once', async () => {
    const mosquitto = await startMosquitto();
    const relay = await startRelay(mosquitto.port);
    const edge = await startEdgeProcess(servers.dir.path, {
      edge: 'gw-rd3',
      nats: { servers: [servers.nats.url] },
      mqtt: { mode: 'external', url: `mqtt://127.0.0.1:${relay.port}` },
      sensors,
    });
    const sensor = await mqtt.connectAsync(mosquitto.url, { clientId: 'rd-ext-sensor' });
    try {
      await waitFor('the agent to subscribe', async () =>
        (await mqttStatus(edge)).ready ? true : undefined,
      );
      relay.swallow.toServer = true;
      await sensor.publishAsync('rd/e1/t', '1', { qos: 1 });
      await sensor.publishAsync('rd/e1/t', '2', { qos: 1 });
      await waitFor('both readings to be committed', async () =>
        (await metrics(edge)).readings === 2 ? true : undefined,
      );
      await edge.kill();
      relay.swallow.toServer = false;
      await edge.restart();
      await waitFor('the re-deliveries', async () =>
        (await metrics(edge)).duplicates === 2 ? true : undefined,
      );
      await sensor.publishAsync('rd/e1/t', '3', { qos: 1 });
      await waitFor('reading 3', async () => ((await metrics(edge)).readings === 1 ? true : undefined));
      expect(await metrics(edge)).toEqual({ readings: 1, duplicates: 2 });
      expect(await storedValues(edge, 'e1')).toEqual([1, 2, 3]);
    } finally {
      await sensor.endAsync(true).catch(() => {});
      await edge.stop();
      await relay.close();
      await mosquitto.close();
    }
  });
});
