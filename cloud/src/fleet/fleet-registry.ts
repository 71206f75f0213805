import { streams, subjects } from '@fieldbeam/protocol';
import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type pg from 'pg';
import type { Logger } from 'pino';
import { type DeadLetter, insertDeadLetters } from '../db/dead-letters.js';
import { isDataError } from '../db/pg-errors.js';
import { CloudErrorCode } from '../errors.js';
import type { CloudMetrics } from '../metrics.js';
import { type DurableConsumer, startDurableConsumer } from '../nats/durable-consumer.js';
import { FleetStore, type Heartbeat } from './fleet-store.js';
import { checkHeartbeat, isOnline } from './heartbeat.js';

/** The durable consumer of FB_STATUS every collector shares. */
export const FLEET_CONSUMER = 'fleet-registry';
/** The `source` of the registry's dead letters. */
export const FLEET_DEAD_LETTER_SOURCE = 'fleet';

export interface FleetRegistryDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  pool: pg.Pool;
  log: Logger;
  metrics: CloudMetrics;
}

/**
 * Heartbeats in batches of this many, each recorded in one statement: 1,000 edges every 5 s (200 a
 * second) take two rounds a second. The consumer holds no more than this in memory at once, each
 * heartbeat at most MAX_HEARTBEAT_BYTES (32 MiB at worst; a few hundred KiB of real ones).
 */
const BATCH = 128;

/**
 * The fleet registry: a durable consumer of every edge's heartbeats (`fb.edge.*.status`) that keeps
 * the latest of each edge in Postgres (`fleet_edges`). A heartbeat that is not JSON, not an
 * EdgeStatus, or names another edge than its subject is counted and dead-lettered (source `fleet`),
 * and the rest of its batch is recorded: one bad heartbeat never holds up the others.
 */
export async function startFleetRegistry(deps: FleetRegistryDeps): Promise<DurableConsumer> {
  const { pool, log, metrics } = deps;
  const store = new FleetStore(pool);
  // Every reason exported from the start, so that an alert on its increase sees the first one.
  for (const reason of ['subject', 'too_large', 'json', 'schema', 'edge_mismatch', 'database'])
    metrics.fleetHeartbeatsRefused.inc({ reason }, 0);

  const deadLetter = (m: JsMsg, reason: string, code: string): DeadLetter => ({
    subject: m.subject,
    streamSeq: m.info.streamSequence,
    reason,
    payload: m.data,
    source: FLEET_DEAD_LETTER_SOURCE,
    code,
  });

  /** Records the batch; a heartbeat Postgres itself refuses is set aside and the rest recorded. */
  const record = async (beats: { beat: Heartbeat; msg: JsMsg }[], dead: DeadLetter[]) => {
    try {
      await store.record(beats.map((b) => b.beat));
      return;
    } catch (err) {
      if (!isDataError(err)) throw err;
    }
    for (const { beat, msg } of beats) {
      try {
        await store.record([beat]);
      } catch (err) {
        if (!isDataError(err)) throw err;
        metrics.fleetHeartbeatsRefused.inc({ reason: 'database' });
        dead.push(
          deadLetter(
            msg,
            `Postgres refused the heartbeat of ${beat.edge}: ${(err as Error).message}`,
            CloudErrorCode.DATA_REFUSED,
          ),
        );
      }
    }
  };

  return startDurableConsumer(
    { js: deps.js, jsm: deps.jsm, log },
    {
      stream: streams.STATUS.name,
      durable: FLEET_CONSUMER,
      filterSubject: subjects.edgeStatusAll,
      batch: BATCH,
      ackWaitMs: 30_000,
      async handle(msgs) {
        const beats: { beat: Heartbeat; msg: JsMsg }[] = [];
        const dead: DeadLetter[] = [];
        for (const m of msgs) {
          const check = checkHeartbeat(m.subject, m.data);
          if (check.ok) {
            beats.push({
              msg: m,
              beat: {
                edge: check.edge,
                seenAt: new Date(Math.floor(m.info.timestampNanos / 1e6)),
                streamSeq: m.info.streamSequence,
                status: check.status,
              },
            });
          } else {
            metrics.fleetHeartbeatsRefused.inc({ reason: check.problem });
            log.warn({ subject: m.subject, reason: check.reason }, 'heartbeat refused (dead letter)');
            dead.push(deadLetter(m, check.reason, CloudErrorCode.MESSAGE_INVALID));
          }
        }
        await record(beats, dead);
        // After the heartbeats: a failure here redelivers the batch, and recording it again is a no-op.
        await insertDeadLetters(pool, dead);
        metrics.fleetHeartbeats.inc(
          beats.length - dead.filter((d) => d.code === CloudErrorCode.DATA_REFUSED).length,
        );
      },
    },
  );
}

/**
 * Sets the per-edge gauges from the registry, for a `/metrics` scrape: one series per edge that ever
 * sent a heartbeat (the registry's rows, so as many as the edges the NATS server lets in); an edge
 * whose row is gone loses its series.
 */
export async function refreshFleetGauges(
  pool: pg.Pool,
  metrics: CloudMetrics,
  known: Set<string>,
  nowMs = Date.now(),
): Promise<void> {
  const rows = await new FleetStore(pool).list();
  const seen = new Set<string>();
  let online = 0;
  for (const r of rows) {
    seen.add(r.edge);
    const labels = { edge: r.edge };
    const up = isOnline(r.lastSeen.getTime(), r.intervalMs, nowMs);
    if (up) online++;
    metrics.edgeOnline.set(labels, up ? 1 : 0);
    metrics.edgeLastSeenAge.set(labels, Math.max(0, (nowMs - r.lastSeen.getTime()) / 1000));
    metrics.edgeBufferDepth.set(labels, r.bufferDepth);
    metrics.edgeOldestUnsentAge.set(labels, r.oldestUnsentAgeS ?? 0);
  }
  for (const edge of known) {
    if (seen.has(edge)) continue;
    for (const g of [
      metrics.edgeOnline,
      metrics.edgeLastSeenAge,
      metrics.edgeBufferDepth,
      metrics.edgeOldestUnsentAge,
    ])
      g.remove({ edge });
  }
  known.clear();
  for (const e of seen) known.add(e);
  metrics.fleetEdges.set({ state: 'online' }, online);
  metrics.fleetEdges.set({ state: 'offline' }, rows.length - online);
}
