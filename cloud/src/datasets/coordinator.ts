import { DataAvailable, decodeMessage, streams } from '@fieldbeam/protocol';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type pg from 'pg';
import type { Logger } from 'pino';
import { type DeadLetter, insertDeadLetters } from '../db/dead-letters.js';
import { CloudErrorCode } from '../errors.js';
import type { CloudMetrics } from '../metrics.js';
import { type DurableConsumer, startDurableConsumer } from '../nats/durable-consumer.js';
import { type DatasetDef, datasetMayMatch } from './dataset-config.js';
import { bindTo, datasetWhere } from './dataset-filter.js';
import type { WindowMark, WindowStore } from './window-store.js';
import { windowsOverlapping } from './windows.js';

/** More windows than this in one batch's time range: ask the data which windows it really touches. */
const MAX_WINDOWS_PER_EVENT = 1000;

/**
 * Turns `DataAvailable` events into dirty windows: a durable consumer on the events stream, shared by
 * every collector. Marks are committed before the events are acknowledged, and marking is
 * idempotent per (window, batch), so a redelivered event does no harm.
 */
export async function startCoordinator(
  deps: {
    js: JetStreamClient;
    jsm: JetStreamManager;
    pool: pg.Pool;
    windows: WindowStore;
    log: Logger;
    metrics: CloudMetrics;
    /** Called after marks were committed (the builder looks for due windows). */
    onMarked?: () => void;
  },
  opts: { datasets: readonly DatasetDef[]; durable: string },
): Promise<DurableConsumer> {
  const { pool, windows, log, metrics } = deps;

  async function windowsOf(def: DatasetDef, e: DataAvailable): Promise<number[]> {
    const from = Date.parse(e.start);
    const to = Date.parse(e.end);
    const listed = windowsOverlapping(from, to, def.window, MAX_WINDOWS_PER_EVENT);
    if (listed) return listed;
    // A batch spanning years (an edge whose clock jumped): look the windows up in what was stored.
    const values: unknown[] = [def.window, e.edge, e.stations];
    const where = datasetWhere(def, bindTo(values), { from: new Date(from), to: new Date(to + 1) });
    const r = await pool.query<{ ws: string }>(
      `SELECT DISTINCT floor(extract(epoch FROM time) * 1000 / $1)::bigint * $1 AS ws FROM observations
       WHERE ${where} AND edge = $2 AND station = ANY($3::text[])`,
      values,
    );
    return r.rows.map((row) => Number(row.ws));
  }

  return startDurableConsumer(deps, {
    stream: streams.EVENTS.name,
    durable: opts.durable,
    batch: 256,
    ackWaitMs: 30_000,
    async handle(msgs) {
      const marks: WindowMark[] = [];
      const dead: DeadLetter[] = [];
      for (const m of msgs) {
        const checked = decodeMessage(DataAvailable, m.data);
        if (!checked.ok) {
          dead.push({
            subject: m.subject,
            streamSeq: m.seq,
            reason: checked.reason,
            payload: m.data,
            source: 'coordinator',
            code: CloudErrorCode.MESSAGE_INVALID,
          });
          log.warn({ seq: m.seq, reason: checked.reason }, 'DataAvailable rejected to dead letters');
          continue;
        }
        const e = checked.value;
        if (e.count === 0) continue;
        for (const def of opts.datasets) {
          if (!datasetMayMatch(def, e)) continue;
          for (const windowStart of await windowsOf(def, e)) {
            marks.push({ dataset: def, windowStart, batch: e.batch, edge: e.edge, inserted: e.inserted });
          }
        }
      }
      if (dead.length > 0) await insertDeadLetters(pool, dead);
      if (marks.length === 0) return;
      await windows.mark(marks);
      for (const m of marks) metrics.windowMarks.inc({ dataset: m.dataset.name });
      deps.onMarked?.();
    },
  });
}
