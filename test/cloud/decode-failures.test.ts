import { streams, subjects } from '@fieldbeam/protocol';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../cloud/src/db/migrations.js';
import { type Ingest, startIngest } from '../../cloud/src/ingest/ingest.js';
import { ObservationStore } from '../../cloud/src/ingest/observation-store.js';
import { createCloudMetrics } from '../../cloud/src/metrics.js';
import { ensureStreams } from '../../cloud/src/nats/streams.js';
import {
  type NatsServer,
  startNatsServer,
  startPostgres,
  type TestPostgres,
  waitFor,
} from '../harness/index.js';
import { reading } from './fixtures.js';

// A decode thread that ends on any message holding `"kills-the-decoder"` (see the fixture), as one
// would that a decoder bug or a message past its memory kills.
const script = new URL('./fixtures/poison-decode-worker.mjs', import.meta.url);
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const CONSUMER = 'decode-failures';

let nats: NatsServer;
let postgres: TestPostgres;
let db: pg.Pool;
let nc: NatsConnection;
let ingest: Ingest | undefined;
const metrics = createCloudMetrics();

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  db = new pg.Pool({ connectionString: postgres.url, max: 4 });
  db.on('error', () => {}); // idle connections dropped when Postgres stops
  await migrate(db);
  nc = await connect({ servers: nats.url });
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, Object.values(streams));
  ingest = await startIngest(
    { js: jetstream(nc), jsm, store: new ObservationStore(db), log, metrics },
    { consumer: CONSUMER, fetch: 16, decodeThreads: 2, decodeScript: script },
  );
});

afterAll(async () => {
  await ingest?.close();
  await nc?.close();
  await db?.end();
  await Promise.all([nats?.close(), postgres?.close()]);
});

const count = async (sql: string) => Number((await db.query<{ n: string }>(sql)).rows[0]?.n);

describe('a message that kills the decode thread', () => {
  it('fails alone: its neighbours are stored and acked, and it ends as one dead letter', async () => {
    const js = jetstream(nc);
    const enc = new TextEncoder();
    const t0 = Date.now() - 60_000;
    let seq = 0;
    const publish = (edge: string, body: object | string) =>
      js.publish(subjects.obs(edge), enc.encode(typeof body === 'string' ? body : JSON.stringify(body)));
    const batch = (edge: string, n: number, quality?: string[]) => {
      const observations = Array.from({ length: n }, (_, i) =>
        reading({ edge, station: i % 3, time: t0 + seq * 1000 + i, value: seq + i, quality }),
      );
      const b = { v: 1, edge, seq: [seq + 1, seq + n], sent: new Date().toISOString(), observations };
      seq += n;
      return b;
    };
    // Good batches on either side of two poison messages: one that is no batch at all, and a good
    // batch whose only fault is to kill the thread (the last check on the main thread stores it).
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < 4; i++) acks.push(publish('gw-good', batch('gw-good', 10)));
    acks.push(publish('gw-bad', '{"v":1,"edge":"gw-bad","note":"kills-the-decoder"}'));
    for (let i = 0; i < 4; i++) acks.push(publish('gw-good', batch('gw-good', 10)));
    acks.push(publish('gw-odd', batch('gw-odd', 5, ['kills-the-decoder'])));
    for (let i = 0; i < 4; i++) acks.push(publish('gw-good', batch('gw-good', 10)));
    await Promise.all(acks);

    const jsm = await jetstreamManager(nc);
    // Each poison message comes back twice (1 s, then 2 s later) before its last check.
    await waitFor(
      'every message settled',
      async () => {
        const info = await jsm.consumers.info(streams.OBS.name, CONSUMER);
        const settled = info.num_pending === 0 && info.num_ack_pending === 0;
        return settled && (await count('SELECT count(*) AS n FROM dead_letters')) > 0 ? true : undefined;
      },
      60_000,
    );
    expect(await count("SELECT count(*) AS n FROM observations WHERE edge = 'gw-good'")).toBe(120);
    expect(await count("SELECT count(*) AS n FROM observations WHERE edge = 'gw-odd'")).toBe(5);
    const dead = await db.query<{ subject: string; reason: string }>(
      'SELECT subject, reason FROM dead_letters',
    );
    expect(dead.rows).toHaveLength(1);
    expect(dead.rows[0]?.subject).toBe(subjects.obs('gw-bad'));
    // At least 3 deliveries: one can also end while it only waited behind another message whose thread
    // died (not held against it), or come again after the ack wait on a busy machine.
    const reason =
      /^decoding failed on (\d+) deliveries \(the decode thread ended while decoding this message \(exit code 3\)\); on the main thread: /.exec(
        dead.rows[0]?.reason ?? '',
      );
    expect(reason, dead.rows[0]?.reason).not.toBeNull();
    expect(Number(reason?.[1])).toBeGreaterThanOrEqual(3);
    const counted = (await metrics.deadLetters.get()).values.find((v) => v.labels.reason === 'decode');
    expect(counted?.value).toBe(1);
  });
});
