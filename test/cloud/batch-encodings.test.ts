import { join } from 'node:path';
import { createEdgeAgent, type EdgeAgent, parseEdgeConfig, toObservation } from '@fieldbeam/edge';
import { isBatchV2, type Observation, streams } from '@fieldbeam/protocol';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CollectorProcess,
  type NatsServer,
  readObsStream,
  startCollectorProcess,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';

/**
 * An edge told to send v1 (JSON, what agents of the previous release send) and an edge sending v2
 * (columns, zstd) forward the same readings into one collector: both arrive whole, equal field for
 * field, and the v2 messages are a fraction of the v1 bytes.
 */
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let db: pg.Pool;
let collector: CollectorProcess;
const edges: EdgeAgent[] = [];

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  dir = tempDir();
  db = new pg.Pool({ connectionString: postgres.url });
  // Idle connections end when Postgres stops at the end: not an error of the test.
  db.on('error', () => {});
  collector = await startCollectorProcess({
    name: 'c',
    natsUrl: nats.url,
    databaseUrl: postgres.url,
    dataDir: join(dir.path, 'collector'),
  });
});

afterAll(async () => {
  for (const e of edges) await e.close();
  await collector?.stop();
  await db?.end();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

const startEdge = async (edge: string, encoding: 'v1' | 'v2'): Promise<EdgeAgent> => {
  const agent = await createEdgeAgent(
    parseEdgeConfig({
      edge,
      data_dir: join(dir.path, edge),
      nats: { servers: [nats.url], ack_timeout_ms: 2000, encoding },
      mqtt: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
    }),
    log,
  );
  edges.push(agent);
  return agent;
};

/** The same readings for each edge, from its own station (an id leaves the edge out: equal readings of one station would be one row). */
function readings(edge: string, station: string, n: number, now: number): Observation[] {
  return Array.from({ length: n }, (_, i) =>
    toObservation(
      { source: 'mqtt', edge, station, ...(i % 3 === 0 ? { sensor: `th-${i % 4}` } : {}) },
      i % 50 === 7
        ? { variable: 'state', value: null, text: `mode ${i % 5} ✓`, unit: '' }
        : {
            variable: ['air_temperature', 'relative_humidity', 'pressure'][i % 3] as string,
            value: Math.round(Math.sin(i / 40) * 1e4) / 100 + (i % 7 === 0 ? -0.001 : 0),
            unit: ['degC', '%', 'hPa'][i % 3] as string,
            ...(i % 11 === 0 ? {} : { timeMs: now - 3_600_000 + i * 250 }),
          },
      now - 3_600_000 + i * 250 + 40,
    ),
  );
}

describe('batch encodings', () => {
  it('a v1 edge and a v2 edge into one collector: the same readings, stored equal', {
    timeout: 120_000,
  }, async () => {
    const n = 3000;
    const now = Date.now();
    const v1 = await startEdge('gw-v1', 'v1');
    const v2 = await startEdge('gw-v2', 'v2');
    await v1.outbox.append(readings('gw-v1', 'st', n, now));
    await v2.outbox.append(readings('gw-v2', 'st-2', n, now));
    await waitFor(
      'the collector to store both edges',
      async () => {
        const r = await db.query<{ edge: string; n: number }>(
          'SELECT edge, count(*)::int AS n FROM observations GROUP BY edge ORDER BY edge',
        );
        return r.rows.length === 2 && r.rows.every((x) => x.n === n) ? true : undefined;
      },
      60_000,
    );
    const cols = 'source, sensor, variable, value, text, unit, time, received, lat, lon, alt, quality';
    const stored = async (edge: string) =>
      (
        await db.query(`SELECT ${cols} FROM observations WHERE edge = $1 ORDER BY time, variable, received`, [
          edge,
        ])
      ).rows;
    expect(await stored('gw-v2')).toEqual(await stored('gw-v1'));
    const dead = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM dead_letters');
    expect(dead.rows[0]?.n).toBe(0);

    // On the wire: v1 JSON and v2 tagged; v2 is a fraction of the bytes.
    const contents = await readObsStream(nats.url);
    expect(contents.observations).toHaveLength(2 * n);
    expect(contents.duplicateIds.size).toBe(0);
    const bytes = new Map<string, { messages: number; bytes: number; v2: number }>();
    const nc = await connect({ servers: nats.url });
    try {
      const consumer = await jetstream(nc).consumers.get(streams.OBS.name, {
        deliver_policy: DeliverPolicy.All,
      });
      const iter = await consumer.consume({ max_messages: 256 });
      for await (const m of iter) {
        const edge = m.subject.split('.').at(-1) as string;
        const b = bytes.get(edge) ?? { messages: 0, bytes: 0, v2: 0 };
        b.messages++;
        b.bytes += m.data.byteLength;
        if (isBatchV2(m.data)) b.v2++;
        bytes.set(edge, b);
        if (m.info.pending === 0) break;
      }
    } finally {
      await nc.close();
    }
    const b1 = bytes.get('gw-v1');
    const b2 = bytes.get('gw-v2');
    expect(b1?.v2).toBe(0);
    expect(b2?.v2).toBe(b2?.messages);
    // v1 batches hold 500 readings; v2 batches 2,000.
    expect(b1?.messages).toBe(6);
    expect(b2?.messages).toBe(2);
    log.info({ v1PerReading: (b1?.bytes ?? 0) / n, v2PerReading: (b2?.bytes ?? 0) / n }, 'uplink bytes');
    expect((b2?.bytes ?? 0) * 4).toBeLessThan(b1?.bytes ?? 0);
  });
});
