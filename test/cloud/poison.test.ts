import { join } from 'node:path';
import { type Collector, createCollector, loadCloudConfig } from '@fieldbeam/cloud';
import { type Observation, observationId, streams, subjects } from '@fieldbeam/protocol';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
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
const MIN = 60_000;

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let db: pg.Pool;
let collector: Collector;

beforeAll(async () => {
  dir = tempDir();
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  db = new pg.Pool({ connectionString: postgres.url });
  db.on('error', () => {}); // idle connections dropped at shutdown
  collector = await createCollector(
    loadCloudConfig({
      NATS_URL: nats.url,
      DATABASE_URL: postgres.url,
      FB_DATA_DIR: join(dir.path, 'collector'),
      FB_HTTP_HOST: '127.0.0.1',
      FB_HTTP_PORT: '0',
      FB_INGEST_FETCH: '16',
      FB_INGEST_MAX_AGE: 'P30D',
      FB_INGEST_MAX_FUTURE: 'PT10M',
      LOG_LEVEL: 'silent',
    }),
    log,
  );
  // A refusal validation cannot foresee: Postgres itself rejects this one value (SQLSTATE 23514).
  await db.query('ALTER TABLE observations ADD CONSTRAINT refuses_666 CHECK (value IS DISTINCT FROM 666)');
});

afterAll(async () => {
  await collector?.close();
  await db?.end();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

/** An observation as an edge would send it, its id derived from its fields unless `id` is given. */
function obs(
  edge: string,
  station: string,
  timeMs: number,
  value: number | null,
  over: Partial<Observation> = {},
) {
  const time = over.time ?? new Date(timeMs).toISOString();
  const key = { source: 'mqtt', station, variable: 'air_temperature', time, value, text: over.text };
  return {
    id: observationId(key),
    source: 'mqtt',
    edge,
    station,
    variable: 'air_temperature',
    value,
    unit: 'degC',
    time,
    received: new Date().toISOString(),
    ...over,
  } as Observation;
}

/** Publishes observations as one batch on the edge's subject, unchecked: bad ones go out as they are. */
function publisher(js: ReturnType<typeof jetstream>) {
  const enc = new TextEncoder();
  let seq = 0;
  return (edge: string, observations: Observation[]) => {
    const first = seq + 1;
    seq += observations.length;
    const batch = { v: 1, edge, seq: [first, seq], sent: new Date().toISOString(), observations };
    return js.publish(subjects.obs(edge), enc.encode(JSON.stringify(batch)), {
      msgID: `${edge}:poison-test:${first}-${seq}`,
    });
  };
}

describe('poison isolation in ingest', () => {
  it('stores every good reading once and sets each bad observation aside with its reason', async () => {
    const now = Date.now();
    const t = (i: number) => now - 5 * MIN + i * 1000;
    const good = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => obs('gw-good', `st-${(from + i) % 4}`, t(from + i), from + i));
    // The victim's reading an attacker pre-empts: same fields, hence same id, sent first by another edge.
    const genuine = obs('gw-victim', 'st-v', t(7), 7.5);
    const poison: [string, Observation][] = [
      ['NUL text', obs('gw-bad', 'st-b', t(1), null, { text: 'hot\u0000x' })],
      ['impossible date', obs('gw-bad', 'st-b', 0, 1, { time: '2026-13-45T25:61:61.000Z' })],
      ['far future', obs('gw-bad', 'st-b', Date.parse('2099-06-01T00:00:00.000Z'), 2)],
      ['wrong id', { ...obs('gw-bad', 'st-b', t(2), 3), id: 'f'.repeat(64) }],
      ['refused by Postgres', obs('gw-bad', 'st-b', t(3), 666)],
      ['pre-empting id', { ...genuine, edge: 'gw-bad' }],
    ];

    const nc = await connect({ servers: nats.url });
    try {
      const publish = publisher(jetstream(nc));
      const acks: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i += 25) acks.push(publish('gw-good', good(i, 25)));
      // Each poison observation rides in a batch of good ones from the same edge.
      poison.forEach(([, bad], i) => {
        acks.push(
          publish('gw-bad', [
            obs('gw-bad', 'st-b', t(100 + i), i),
            bad,
            obs('gw-bad', 'st-c', t(100 + i), i),
          ]),
        );
      });
      // A message of 300 bad observations costs one dead letter, not 300.
      acks.push(
        publish(
          'gw-bad',
          Array.from({ length: 300 }, (_, i) => ({ ...obs('gw-bad', 'st-d', t(i), i), id: '0'.repeat(64) })),
        ),
      );
      for (let i = 100; i < 200; i += 25) acks.push(publish('gw-good', good(i, 25)));
      acks.push(publish('gw-victim', [genuine]));
      await Promise.all(acks);
    } finally {
      await nc.close();
    }

    const expected =
      200 + 2 * poison.length + 1 /* genuine */ + 1; /* the pre-empting copy, as gw-bad's own */
    await waitFor('every good reading stored', async () => {
      const r = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM observations');
      return (r.rows[0]?.n ?? 0) >= expected ? true : undefined;
    });
    const rows = await db.query<{ edge: string; n: number; distinct: number }>(
      `SELECT edge, count(*)::int AS n, count(DISTINCT id)::int AS distinct FROM observations GROUP BY edge ORDER BY edge`,
    );
    expect(rows.rows).toEqual([
      { edge: 'gw-bad', n: 2 * poison.length + 1, distinct: 2 * poison.length + 1 },
      { edge: 'gw-good', n: 200, distinct: 200 },
      { edge: 'gw-victim', n: 1, distinct: 1 },
    ]);
    const victim = await db.query('SELECT id, value FROM observations WHERE edge = $1', ['gw-victim']);
    expect(victim.rows).toEqual([{ id: genuine.id, value: 7.5 }]);

    const dead = await waitFor('the dead letters', async () => {
      const r = await db.query<{ subject: string; reason: string }>(
        'SELECT subject, reason FROM dead_letters ORDER BY id',
      );
      return r.rows.length >= 6 ? r.rows : undefined;
    });
    expect(dead).toHaveLength(6);
    expect(dead.every((d) => d.subject === 'fb.obs.gw-bad')).toBe(true);
    const reasons = dead.map((d) => d.reason).join('\n');
    expect(reasons).toMatch(/text: contains the NUL character/);
    expect(reasons).toMatch(/time: expected a real date/);
    expect(reasons).toMatch(/in the future, beyond the accepted 10 min \(time 2099-06-01/);
    expect(reasons).toMatch(/id f{64} is not the id of its fields/);
    expect(reasons).toMatch(/Postgres refused .*refuses_666.*SQLSTATE 23514/);
    expect(reasons).toMatch(
      /300 observations set aside: observations\[0\]: id 0{64} is not the id.*\(\+280 more\)/,
    );

    const partitions = await db.query<{ relname: string }>(
      `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'observations'::regclass`,
    );
    expect(partitions.rows.map((p) => p.relname)).not.toContain('observations_p2099_06');
    expect(partitions.rows.length).toBeLessThanOrEqual(2);

    const metric = (reason: string) =>
      readMetric(collector.httpPort, 'fb_cloud_ingest_dead_letters_total', `reason="${reason}"`);
    expect(await metric('text')).toBe(1);
    expect(await metric('time_invalid')).toBe(1);
    expect(await metric('time_range')).toBe(1);
    expect(await metric('id_mismatch')).toBe(301);
    expect(await metric('database')).toBe(1);
  });
  it('sets aside a batch whose buffer id Postgres cannot hold, and acknowledges the rounds beside it', async () => {
    // The buffer id is stored with the batch's sequence ranges: a NUL there once failed every round
    // that carried it, redelivered for ever with the other edges' batches of the round.
    const now = Date.now();
    const enc = new TextEncoder();
    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      const batch = (edge: string, first: number, buffer: { id: string; start: number }) => ({
        v: 1,
        edge,
        seq: [first, first],
        sent: new Date().toISOString(),
        buffer,
        observations: [obs(edge, 'st-n', now - 4 * MIN + first * 1000, first)],
      });
      const acks: Promise<unknown>[] = [
        js.publish(
          subjects.obs('gw-nulbuf'),
          enc.encode(JSON.stringify(batch('gw-nulbuf', 1, { id: 'ab\u0000cd', start: 1 }))),
          {
            msgID: 'gw-nulbuf:nul:1',
          },
        ),
      ];
      for (let i = 1; i <= 5; i++)
        acks.push(
          js.publish(
            subjects.obs('gw-beside'),
            enc.encode(JSON.stringify(batch('gw-beside', i, { id: 'b1', start: 1 }))),
            {
              msgID: `gw-beside:b1:${i}`,
            },
          ),
        );
      await Promise.all(acks);
      await waitFor('the batches beside it stored', async () => {
        const r = await db.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM observations WHERE edge = 'gw-beside'",
        );
        return r.rows[0]?.n === 5 ? true : undefined;
      });
      const dead = await waitFor('its dead letter', async () => {
        const r = await db.query<{ reason: string }>(
          "SELECT reason FROM dead_letters WHERE subject = 'fb.obs.gw-nulbuf'",
        );
        return r.rows.length > 0 ? r.rows : undefined;
      });
      expect(dead).toHaveLength(1);
      expect(dead[0]?.reason).toMatch(/buffer\.id/);
      // Every message acknowledged: none waits for a redelivery.
      const jsm = await jetstreamManager(nc);
      const consumers = await jsm.consumers.list(streams.OBS.name).next();
      await waitFor('nothing left unacknowledged', async () => {
        const infos = await Promise.all(consumers.map((c) => jsm.consumers.info(streams.OBS.name, c.name)));
        return infos.every((c) => c.num_ack_pending === 0 && c.num_pending === 0) ? true : undefined;
      });
    } finally {
      await nc.close();
    }
    const stored = await db.query("SELECT count(*)::int AS n FROM observations WHERE edge = 'gw-nulbuf'");
    expect(stored.rows[0]).toEqual({ n: 0 });
  });
});
