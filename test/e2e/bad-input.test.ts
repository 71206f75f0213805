import { createCollector } from '@fieldbeam/cloud';
import { createEdgeAgent, parseEdgeConfig } from '@fieldbeam/edge';
import { observationId } from '@fieldbeam/protocol';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import mqtt from 'mqtt';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type NatsServer,
  readMetric,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let db: pg.Pool;

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  dir = tempDir();
  db = new pg.Pool({ connectionString: postgres.url });
  // Idle connections end when Postgres stops at the end: not an error of the test.
  db.on('error', () => {});
});
afterAll(async () => {
  await db?.end();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

describe('bad input on the skeleton path', () => {
  it('rejects, counts and keeps bad input with a reason, and keeps delivering good data next to it', async () => {
    const collector = await createCollector(
      {
        NATS_URL: nats.url,
        DATABASE_URL: postgres.url,
        FB_DATA_DIR: dir.path,
        FB_EMBEDDED_PG_PORT: 0,
        FB_HTTP_HOST: '127.0.0.1',
        FB_HTTP_PORT: 0,
        FB_INGEST_CONSUMER: 'ingest',
        FB_INGEST_FETCH: 16,
        LOG_LEVEL: 'silent',
      },
      log,
    );
    const edge = await createEdgeAgent(
      parseEdgeConfig({
        edge: 'gw-bad',
        data_dir: `${dir.path}/edge`,
        nats: { servers: [nats.url] },
        mqtt: { host: '127.0.0.1', port: 0, max_packet_bytes: 4096, max_readings_per_message: 20 },
        http: { host: '127.0.0.1', port: 0 },
        sensors: [
          {
            topic: 'sensors/+station/temperature',
            decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
          },
          { topic: 'sensors/+station/all', decoder: { type: 'json' } },
          {
            topic: 'sensors/+station/env',
            decoder: { type: 'json', fields: { humidity: { variable: 'relative_humidity', unit: '%' } } },
          },
        ],
      }),
      log,
    );
    const nc = await connect({ servers: nats.url });
    try {
      const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${edge.mqttPort}`);
      // Every bad message is still acknowledged: it was received and kept; resending would not fix it.
      await client.publishAsync('sensors/a/env', '{"humidity": 4', { qos: 1 }); // malformed JSON
      await client.publishAsync('sensors/a/temperature', 'warm', { qos: 1 }); // not a number
      await client.publishAsync('sensors/a/env', '{"humidity": "damp"}', { qos: 1 }); // wrong type
      await client.publishAsync('sensors/a/temperature', Buffer.from([0xff, 0xfe]), { qos: 1 }); // not UTF-8
      await client.publishAsync('sensors/a/temperature', 'x'.repeat(5000), { qos: 1 }); // oversized
      const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`f${i}`, i]));
      await client.publishAsync('sensors/a/all', JSON.stringify(many), { qos: 1 }); // too many readings
      await client.publishAsync('sensors/a/all', '{"f1": 1, "f2": 2}', { qos: 1 }); // good: within the limit
      // Text Postgres cannot store: that reading is rejected, the other one of the message kept.
      await client.publishAsync('sensors/a/all', '{"f\\u0000": 4, "f3": 3}', { qos: 1 });
      await client.publishAsync('elsewhere/b/thing', '1', { qos: 1 }); // no sensor matches
      await client.publishAsync('elsewhere/c/thing', '2', { qos: 1 });
      await client.publishAsync('sensors/a/temperature', '21.5', { qos: 1 }); // good, next to the bad
      await client.publishAsync('sensors/a/env', '{"humidity": 40}', { qos: 1 }); // good
      await client.endAsync();

      const rejects = await edge.outbox.listRejects(10);
      expect(rejects).toHaveLength(7);
      const reasons = rejects.map((r) => r.reason).join('\n');
      expect(reasons).toMatch(/not JSON/);
      expect(reasons).toMatch(/expected a plain number for air_temperature, got "warm"/);
      expect(reasons).toMatch(/field "humidity" must be a number/);
      expect(reasons).toMatch(/not valid UTF-8/);
      expect(reasons).toMatch(/exceeds mqtt.max_packet_bytes/);
      expect(reasons).toMatch(/21 readings in one message exceed mqtt.max_readings_per_message \(20\)/);
      expect(reasons).toMatch(/variable of "json:f\\u0000" contains the NUL character/);
      expect(await readMetric(edge.httpPort, 'fb_edge_rejected_total')).toBe(7);
      expect(await readMetric(edge.httpPort, 'fb_edge_unmatched_topic_total', 'prefix="elsewhere"')).toBe(2);

      // A batch published on gw-bad's subject that claims to come from another edge is dead-lettered.
      const js = jetstream(nc);
      const key = {
        source: 'mqtt',
        station: 'x',
        variable: 'air_temperature',
        time: '2026-01-01T00:00:00.000Z',
        value: 99,
      };
      const spoofed = {
        v: 1,
        edge: 'gw-victim',
        seq: [1, 1],
        sent: new Date().toISOString(),
        observations: [
          { ...key, id: observationId(key), edge: 'gw-victim', unit: 'degC', received: key.time },
        ],
      };
      await js.publish('fb.obs.gw-bad', JSON.stringify(spoofed), { msgID: 'spoof-1' });
      await js.publish('fb.obs.gw-bad', '{"v":1,', { msgID: 'garbage-1' });

      await waitFor('good rows and dead letters', async () => {
        const rows = Number((await db.query('SELECT count(*) AS n FROM observations')).rows[0].n);
        const dead = Number((await db.query('SELECT count(*) AS n FROM dead_letters')).rows[0].n);
        return rows >= 5 && dead >= 2 ? true : undefined;
      });
      const rows = (await db.query('SELECT variable, value FROM observations ORDER BY variable')).rows;
      expect(rows).toEqual([
        { variable: 'air_temperature', value: 21.5 },
        { variable: 'json:f1', value: 1 },
        { variable: 'json:f2', value: 2 },
        { variable: 'json:f3', value: 3 },
        { variable: 'relative_humidity', value: 40 },
      ]);
      const dead = (await db.query('SELECT subject, reason FROM dead_letters ORDER BY id')).rows;
      expect(dead).toHaveLength(2);
      expect(dead.map((d) => d.reason).join('\n')).toMatch(
        /claims edge "gw-victim" but was published on fb\.obs\.gw-bad/,
      );
      expect(dead.map((d) => d.reason).join('\n')).toMatch(/not valid JSON/);
      const health = await fetch(`http://127.0.0.1:${collector.httpPort}/healthz`);
      expect(health.status).toBe(200);
      expect(await readMetric(collector.httpPort, 'fb_cloud_ingest_dead_letters_total')).toBe(2);
    } finally {
      await nc.close();
      await edge.close();
      await collector.close();
    }
  });
});
