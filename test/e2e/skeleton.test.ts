import { createCollector } from '@fieldbeam/cloud';
import { createEdgeAgent, type EdgeAgent, parseEdgeConfig } from '@fieldbeam/edge';
import { observationId } from '@fieldbeam/protocol';
import mqtt from 'mqtt';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type NatsServer,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const N = 10_000;
const STATIONS = 10;

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

function collectorEnv(consumer: string) {
  return {
    NATS_URL: nats.url,
    DATABASE_URL: postgres.url,
    FB_DATA_DIR: dir.path,
    FB_EMBEDDED_PG_PORT: 0,
    FB_HTTP_HOST: '127.0.0.1',
    FB_HTTP_PORT: 0,
    FB_INGEST_CONSUMER: consumer,
    FB_INGEST_FETCH: 64,
    LOG_LEVEL: 'silent',
  } as const;
}

async function startEdge(edge: string): Promise<EdgeAgent> {
  const config = parseEdgeConfig({
    edge,
    data_dir: `${dir.path}/${edge}`,
    nats: { servers: [nats.url] },
    mqtt: { host: '127.0.0.1', port: 0 },
    http: { host: '127.0.0.1', port: 0 },
    sensors: [
      {
        topic: 'sensors/+station/temperature',
        decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
      },
      {
        topic: 'sensors/+station/env',
        decoder: { type: 'json', fields: { humidity: { variable: 'relative_humidity', unit: '%' } } },
      },
    ],
  });
  return createEdgeAgent(config, log);
}

const count = async (sql: string) => Number((await db.query<{ n: string }>(sql)).rows[0]?.n);

/** Publishes with mqtt.js at QoS 1 and resolves once every PUBACK has arrived. */
async function publishAll(port: number, messages: { topic: string; payload: string }[]): Promise<number> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clean: true });
  let acked = 0;
  const window = 500;
  for (let i = 0; i < messages.length; i += window) {
    await Promise.all(
      messages.slice(i, i + window).map(async (m) => {
        await client.publishAsync(m.topic, m.payload, { qos: 1 });
        acked++;
      }),
    );
  }
  await client.endAsync();
  return acked;
}

describe('walking skeleton: MQTT -> SQLite -> JetStream -> Postgres', () => {
  it(`delivers ${N} QoS 1 readings exactly once, with the protocol's ids, and survives a full replay`, async () => {
    const collector = await createCollector(collectorEnv('ingest'), log);
    const edge = await startEdge('gw-e2e');
    try {
      const messages = Array.from({ length: N }, (_, i) => ({
        topic: `sensors/st-${i % STATIONS}/temperature`,
        payload: String(i / 10),
      }));
      expect(await publishAll(edge.mqttPort ?? 0, messages)).toBe(N);

      await waitFor('all rows in Postgres', async () =>
        (await count('SELECT count(*) AS n FROM observations')) >= N ? true : undefined,
      );
      await waitFor('the edge buffer to drain', () => (edge.outbox.stats().depth === 0 ? true : undefined));

      const rows = (
        await db.query<{
          id: string;
          source: string;
          station: string;
          sensor: string | null;
          variable: string;
          time: Date;
          value: number;
          text: string | null;
          edge: string;
        }>('SELECT id, source, station, sensor, variable, time, value, text, edge FROM observations')
      ).rows;
      expect(rows).toHaveLength(N);
      // Every id is the one the protocol derives from the stored reading.
      for (const r of rows) {
        const id = observationId({
          source: r.source,
          station: r.station,
          sensor: r.sensor ?? undefined,
          variable: r.variable,
          time: r.time.toISOString(),
          value: r.value,
          text: r.text ?? undefined,
        });
        expect(r.id).toBe(id);
      }
      // And every published reading is there once, on its station.
      const seen = new Set(rows.map((r) => `${r.station}|${r.value}`));
      expect(seen.size).toBe(N);
      for (const m of messages) expect(seen.has(`${m.topic.split('/')[1]}|${Number(m.payload)}`)).toBe(true);
      expect(
        rows.every((r) => r.edge === 'gw-e2e' && r.source === 'mqtt' && r.variable === 'air_temperature'),
      ).toBe(true);
    } finally {
      await edge.close();
      await collector.close();
    }

    // Run again against the same database: a new consumer replays the whole stream from the start,
    // so every batch arrives a second time. Ingest is idempotent on id: still exactly N rows.
    const replay = await createCollector(collectorEnv('ingest-replay'), log);
    try {
      await waitFor('the replay consumer to catch up', async () => {
        const r = await fetch(`http://127.0.0.1:${replay.httpPort}/metrics`);
        const text = await r.text();
        const m = /^fb_cloud_ingest_observations_total (\d+)/m.exec(text);
        return m && Number(m[1]) >= N ? true : undefined;
      });
      expect(await count('SELECT count(*) AS n FROM observations')).toBe(N);
      const health = await fetch(`http://127.0.0.1:${replay.httpPort}/healthz`);
      expect(health.status).toBe(200);
    } finally {
      await replay.close();
    }
  });
});
