import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { edgeCompleteness } from '@fieldbeam/cloud';
import { createEdgeAgent, type EdgeAgent, parseEdgeConfig, toObservation } from '@fieldbeam/edge';
import { decodeObservationBatch, streams } from '@fieldbeam/protocol';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CollectorProcess,
  type NatsServer,
  startCollectorProcess,
  startNatsServer,
  startPostgres,
  startTcpProxy,
  type TcpProxy,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';

/**
 * Completeness per edge, end to end: real edge agents forward their buffers over JetStream, a
 * collector process started afterwards ingests them, and its per-edge figures are exact: a batch
 * deleted from the stream before the collector read it is an unexplained gap, a replaced buffer file
 * starts a new sequence space (no gap), and what drop_oldest dropped is explained to the reading.
 */
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let nats: NatsServer;
let postgres: TestPostgres;
let proxy: TcpProxy;
let dir: TempDir;
let db: pg.Pool;
let collector: CollectorProcess;

beforeAll(async () => {
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  proxy = await startTcpProxy(nats.port);
  dir = tempDir();
  db = new pg.Pool({ connectionString: postgres.url });
  // Idle connections end when Postgres stops at the end: not an error of the test.
  db.on('error', () => {});
  // The collector creates the streams and migrates the database, then stops until the edges are done.
  collector = await startCollectorProcess({
    name: 'c',
    natsUrl: nats.url,
    databaseUrl: postgres.url,
    dataDir: join(dir.path, 'collector'),
  });
  await collector.stop();
});

afterAll(async () => {
  await collector?.stop();
  await db?.end();
  await proxy?.close();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

const startEdge = (edge: string, url: string, buffer: Record<string, unknown> = {}): Promise<EdgeAgent> =>
  createEdgeAgent(
    parseEdgeConfig({
      edge,
      data_dir: join(dir.path, edge),
      nats: { servers: [url], ack_timeout_ms: 1000 },
      mqtt: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      forward: { max_batch_observations: 10, v2_batch_observations: 10 },
      buffer,
    }),
    log,
  );

let value = 0;
/** `n` readings appended straight to the agent's buffer (what its sources do), in chunks. */
async function feed(agent: EdgeAgent, n: number): Promise<void> {
  const now = Date.now();
  for (let done = 0; done < n; done += 100) {
    const chunk = Array.from({ length: Math.min(100, n - done) }, () =>
      toObservation(
        { source: 'mqtt', edge: agent.edge, station: 's1' },
        { variable: 'x:n', value: ++value, unit: '1', timeMs: now - 60_000 + (value % 60_000) },
        now,
      ),
    );
    await agent.outbox.append(chunk);
  }
}

const drained = (agent: EdgeAgent) =>
  waitFor(
    `${agent.edge} to send its buffer`,
    () => (agent.outbox.stats().depth === 0 ? true : undefined),
    60_000,
  );

describe('completeness per edge', () => {
  it('is exact across a lost batch, a replaced buffer file and drop_oldest drops', {
    timeout: 180_000,
  }, async () => {
    // gw-a: 100 readings in batches of at most 10; one batch is then deleted from the stream.
    let a = await startEdge('gw-a', nats.url);
    const firstBuffer = a.outbox.bufferId;
    await feed(a, 100);
    await drained(a);
    await a.close();
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(streams.OBS.name);
    const victim = Math.floor((info.state.first_seq + info.state.last_seq) / 2);
    const lost = await jsm.streams.getMessage(streams.OBS.name, { seq: victim });
    const lostBatch = lost && decodeObservationBatch(lost.data);
    if (!lostBatch?.ok) throw new Error('no batch to delete');
    expect(lostBatch.value.buffer?.id).toBe(firstBuffer);
    await jsm.streams.deleteMessage(streams.OBS.name, victim);

    // Its buffer file is replaced (a new SD card, a file moved aside): a new id, sequence numbers from 1.
    rmSync(join(dir.path, 'gw-a'), { recursive: true, force: true });
    a = await startEdge('gw-a', nats.url);
    expect(a.outbox.bufferId).not.toBe(firstBuffer);
    await feed(a, 30);
    await drained(a);
    await a.close();

    // gw-b: drop_oldest with a small buffer while its uplink is refused, then the uplink comes back.
    await proxy.setMode('refuse');
    const b = await startEdge('gw-b', `nats://127.0.0.1:${proxy.port}`, {
      capacity_bytes: 200_000,
      policy: 'drop_oldest',
    });
    await feed(b, 2000);
    const dropped = b.outbox.stats().dropped;
    expect(dropped).toBeGreaterThan(0);
    await proxy.setMode('pass');
    await drained(b);
    await b.close();
    await nc.close();

    // The collector, started only now, ingests what the stream holds.
    await collector.start();
    await waitFor(
      'the collector to ingest everything',
      async () => {
        const r = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM observations');
        return r.rows[0]?.n ===
          100 - (lostBatch.value.seq[1] - lostBatch.value.seq[0] + 1) + 30 + 2000 - dropped
          ? true
          : undefined;
      },
      60_000,
    );

    const lostCount = lostBatch.value.seq[1] - lostBatch.value.seq[0] + 1;
    const ca = await edgeCompleteness(db, 'gw-a');
    expect(ca).toMatchObject({
      readings: 130 - lostCount,
      explained: { droppedOldest: 0 },
      unexplained: lostCount,
    });
    expect(ca.buffers.map((x) => x.bufferId)).toEqual([firstBuffer, a.outbox.bufferId]);
    expect(ca.buffers[0]).toMatchObject({
      start: 1,
      readings: 100 - lostCount,
      lastSeq: 100,
      unexplained: lostCount,
      unexplainedRanges: [lostBatch.value.seq],
    });
    expect(ca.buffers[1]).toMatchObject({ start: 1, readings: 30, lastSeq: 30, unexplained: 0 });

    const cb = await edgeCompleteness(db, 'gw-b');
    expect(cb).toMatchObject({
      readings: 2000 - dropped,
      explained: { droppedOldest: dropped },
      unexplained: 0,
    });

    // The metric an alert is written against.
    await waitFor(
      'the unexplained-gap gauge',
      async () => {
        const m = await collector.metrics();
        return m?.get('fb_cloud_edge_unexplained_gap_readings{edge="gw-a"}') === lostCount &&
          m.get('fb_cloud_edge_unexplained_gap_readings{edge="gw-b"}') === 0
          ? true
          : undefined;
      },
      30_000,
    );
    // Compaction left a few rows per buffer and kind, not one per batch.
    const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM edge_seq_ranges');
    expect(rows.rows[0]?.n).toBeLessThanOrEqual(8);
    expect(await edgeCompleteness(db, 'gw-a')).toEqual(ca);
  });
});
