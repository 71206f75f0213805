import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import {
  edgeCli,
  natsPerTest,
  parsePrometheus,
  readObsStream,
  startEdgeProcess,
  waitFor,
} from '../harness/index.js';

const servers = natsPerTest();

const configured = {
  topic: 'a/+station/t',
  decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
};

const tasmotaSensor = (t: number) =>
  JSON.stringify({
    Time: '2026-01-01T10:00:00',
    BME280: { Temperature: t, Humidity: 41.5, Pressure: 1009.3 },
    TempUnit: 'C',
    PressureUnit: 'hPa',
  });

async function metrics(httpPort: number): Promise<Map<string, number>> {
  return parsePrometheus(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
}

describe('auto_register with the real agent', () => {
  it('unknown Tasmota and zigbee2mqtt topics become sensors whose readings reach JetStream, up to max_sensors', async () => {
    const base = {
      edge: 'gw-auto',
      nats: { servers: [servers.nats.url] },
      sensors: [configured],
      auto_register: { enabled: true, max_sensors: 3 },
    };
    const edge = await startEdgeProcess(servers.dir.path, base);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${edge.mqttPort}`);
    try {
      await client.publishAsync('tele/kitchen/SENSOR', tasmotaSensor(21.5), { qos: 1 });
      await client.publishAsync(
        'zigbee2mqtt/living room',
        JSON.stringify({ temperature: 19.25, humidity: 55, battery: 97, linkquality: 120 }),
        { qos: 1 },
      );
      // Nothing numeric: counted as unmatched, not registered.
      await client.publishAsync('hall/light', 'ON', { qos: 1 });
      await client.publishAsync('a/barn/t', '7.5', { qos: 1 });

      const first = await waitFor('auto-registered readings upstream', async () => {
        const s = await readObsStream(servers.nats.url);
        return s.observations.length >= 8 ? s : undefined;
      });
      const seen = first.observations.map((o) => [o.station, o.sensor ?? null, o.variable, o.value]);
      expect(seen).toEqual(
        expect.arrayContaining([
          ['kitchen', 'BME280', 'air_temperature', 21.5],
          ['kitchen', 'BME280', 'relative_humidity', 41.5],
          ['kitchen', 'BME280', 'air_pressure', 1009.3],
          ['living room', null, 'air_temperature', 19.25],
          ['living room', null, 'relative_humidity', 55],
          ['barn', null, 'air_temperature', 7.5],
        ]),
      );
      expect(first.observations.every((o) => o.source === 'mqtt' && o.edge === 'gw-auto')).toBe(true);

      let m = await metrics(edge.httpPort);
      expect(m.get('fb_edge_auto_registered_sensors')).toBe(2);
      expect(m.get('fb_edge_unmatched_topic_total{prefix="hall"}')).toBe(1);
      expect(m.get('fb_edge_auto_register_skipped_total{reason="no_reading"}')).toBe(1);

      // The bound: one more topic fits, the next two are counted and skipped.
      for (const room of ['r1', 'r2', 'r3'])
        await client.publishAsync(`rooms/${room}/temperature`, '20', { qos: 1 });
      m = await metrics(edge.httpPort);
      expect(m.get('fb_edge_auto_registered_sensors')).toBe(3);
      expect(m.get('fb_edge_auto_register_skipped_total{reason="limit"}')).toBe(2);
      expect(m.get('fb_edge_unmatched_topic_total{prefix="rooms"}')).toBe(2);
      // A sensor registered before the bound was reached keeps flowing.
      await client.publishAsync('tele/kitchen/SENSOR', tasmotaSensor(22), { qos: 1 });
      const second = await waitFor('the bound applied upstream', async () => {
        const s = await readObsStream(servers.nats.url);
        return s.observations.some((o) => o.station === 'kitchen' && o.value === 22) ? s : undefined;
      });
      const stations = new Set(second.observations.map((o) => o.station));
      expect(stations.has('rooms/r1')).toBe(true);
      expect(stations.has('rooms/r2')).toBe(false);
      expect(stations.has('rooms/r3')).toBe(false);
      expect(second.duplicateIds.size).toBe(0);

      // Visible to a person: `fieldbeam-edge status`.
      const { stdout } = await promisify(execFile)(process.execPath, [
        edgeCli,
        'status',
        '--config',
        edge.configFile,
      ]);
      expect(stdout).toMatch(/auto sensors 3 of at most 3 \(auto_register\)/);
      expect(stdout).toMatch(
        /tele\/kitchen\/SENSOR {2}tasmota, station kitchen, 2 messages: air_temperature/,
      );
      expect(stdout).toMatch(/zigbee2mqtt\/living room {2}zigbee2mqtt, station living room/);

      // SIGHUP: a configured sensor now claims the Tasmota topic; its auto sensor is dropped, the rest kept.
      edge.writeConfig({
        ...base,
        sensors: [
          configured,
          { topic: 'tele/+station/SENSOR', decoder: { type: 'tasmota' }, station: 'cfg-kitchen' },
        ],
      });
      edge.signal('SIGHUP');
      await waitFor('the reload', async () =>
        (await metrics(edge.httpPort)).get('fb_edge_auto_registered_sensors') === 2 ? true : undefined,
      );
      await client.publishAsync('tele/kitchen/SENSOR', tasmotaSensor(23), { qos: 1 });
      await waitFor('the configured sensor winning', async () => {
        const s = await readObsStream(servers.nats.url);
        return s.observations.some((o) => o.station === 'cfg-kitchen' && o.value === 23) ? true : undefined;
      });
      const status = (await edge.status()) as unknown as { autoRegister: { sensors: { topic: string }[] } };
      expect(status.autoRegister.sensors.map((s) => s.topic)).toEqual([
        'zigbee2mqtt/living room',
        'rooms/r1/temperature',
      ]);
    } finally {
      await client.endAsync();
      await edge.stop();
    }
  }, 90_000);

  it('off by default: unknown topics are only counted', async () => {
    const edge = await startEdgeProcess(servers.dir.path, {
      edge: 'gw-noauto',
      nats: { servers: [servers.nats.url] },
    });
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${edge.mqttPort}`);
    try {
      await client.publishAsync('tele/kitchen/SENSOR', tasmotaSensor(21.5), { qos: 1 });
      const m = await metrics(edge.httpPort);
      expect(m.get('fb_edge_unmatched_topic_total{prefix="tele"}')).toBe(1);
      expect(m.get('fb_edge_auto_registered_sensors')).toBe(0);
      expect(m.get('fb_edge_readings_total{source="mqtt"}') ?? 0).toBe(0);
    } finally {
      await client.endAsync();
      await edge.stop();
    }
  }, 60_000);
});
