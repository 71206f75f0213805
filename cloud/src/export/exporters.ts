import { createHash } from 'node:crypto';
import { DataSetAvailable, decodeMessage, streams, subjects } from '@fieldbeam/protocol';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type pg from 'pg';
import type { Logger } from 'pino';
import { datasetObjectKey } from '../datasets/builder.js';
import { type DeadLetter, insertDeadLetters } from '../db/dead-letters.js';
import type { CloudMetrics } from '../metrics.js';
import { type DurableConsumer, startDurableConsumer } from '../nats/durable-consumer.js';
import type { ObjectStore } from '../storage/object-store.js';
import { arrowToGeoParquet, PARQUET_CONTENT_TYPE } from './geoparquet.js';

export type ExporterName = 'geoparquet' | 'api';

interface ExportDone {
  key: string | null;
  rows: number | null;
  bytes: number | null;
}

/** What one exporter does with one announced version; must be safe to repeat. */
type ExportFn = (e: DataSetAvailable) => Promise<ExportDone>;

/**
 * Runs an exporter as its own durable consumer of `fb.dataset.>`. Idempotent on (dataset, window,
 * version) through `dataset_exports`: a version already exported is acknowledged and skipped.
 */
async function startExporter(
  deps: { js: JetStreamClient; jsm: JetStreamManager; pool: pg.Pool; log: Logger; metrics: CloudMetrics },
  name: ExporterName,
  durable: string,
  run: ExportFn,
): Promise<DurableConsumer> {
  const { pool, log, metrics } = deps;
  return startDurableConsumer(deps, {
    stream: streams.DATASETS.name,
    durable,
    filterSubject: subjects.datasetAll,
    batch: 8,
    ackWaitMs: 60_000,
    async handle(msgs) {
      const dead: DeadLetter[] = [];
      for (const m of msgs) {
        const checked = decodeMessage(DataSetAvailable, m.data);
        if (!checked.ok) {
          dead.push({ subject: m.subject, streamSeq: m.seq, reason: checked.reason, payload: m.data });
          continue;
        }
        const e = checked.value;
        const done = await pool.query(
          'SELECT 1 FROM dataset_exports WHERE exporter = $1 AND dataset = $2 AND window_start = $3 AND version = $4',
          [name, e.dataset, e.start, e.version],
        );
        if ((done.rowCount ?? 0) > 0) {
          metrics.exports.inc({ exporter: name, outcome: 'skipped' });
          continue;
        }
        const timer = metrics.exportSeconds.startTimer({ exporter: name });
        try {
          const out = await run(e);
          await pool.query(
            `INSERT INTO dataset_exports (exporter, dataset, window_start, version, key, rows, bytes)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
            [name, e.dataset, e.start, e.version, out.key, out.rows, out.bytes],
          );
          timer();
          metrics.exports.inc({ exporter: name, outcome: 'exported' });
          log.info({ exporter: name, dataset: e.dataset, window: e.start, version: e.version }, 'exported');
        } catch (err) {
          metrics.exports.inc({ exporter: name, outcome: 'failed' });
          throw err;
        }
      }
      if (dead.length > 0) await insertDeadLetters(pool, dead);
    },
  });
}

/** Reads a version's Arrow object and checks it is the one announced. */
async function arrowOf(store: ObjectStore, e: DataSetAvailable): Promise<Uint8Array> {
  const bytes = await store.get(e.key);
  if (!bytes) throw new Error(`object ${e.key} is missing`);
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (sha !== e.sha256) throw new Error(`object ${e.key} has sha256 ${sha}, announced ${e.sha256}`);
  return bytes;
}

/** GeoParquet next to the Arrow object: `datasets/<name>/<window>/<version>.parquet`. */
export function geoParquetExport(store: ObjectStore): ExportFn {
  return async (e) => {
    const { parquet, rows } = arrowToGeoParquet(await arrowOf(store, e));
    if (rows !== e.rows) throw new Error(`object ${e.key} has ${rows} rows, announced ${e.rows}`);
    const key = datasetObjectKey(e.dataset, new Date(e.start), e.version, 'parquet');
    await store.put(key, parquet, PARQUET_CONTENT_TYPE);
    return { key, rows, bytes: parquet.byteLength };
  };
}

/** The read API's catalog: a version becomes downloadable through the API once checked here. */
export function apiCatalogExport(store: ObjectStore): ExportFn {
  return async (e) => {
    const info = await store.head(e.key);
    if (!info) throw new Error(`object ${e.key} is missing`);
    return { key: e.key, rows: e.rows, bytes: info.size };
  };
}

export async function startExporters(
  deps: {
    js: JetStreamClient;
    jsm: JetStreamManager;
    pool: pg.Pool;
    store: ObjectStore;
    log: Logger;
    metrics: CloudMetrics;
  },
  opts: { exporters: readonly ExporterName[]; durablePrefix: string },
): Promise<DurableConsumer[]> {
  const started: DurableConsumer[] = [];
  try {
    for (const name of opts.exporters) {
      const run = name === 'geoparquet' ? geoParquetExport(deps.store) : apiCatalogExport(deps.store);
      started.push(await startExporter(deps, name, `${opts.durablePrefix}-${name}`, run));
    }
  } catch (err) {
    await Promise.all(started.map((c) => c.close()));
    throw err;
  }
  return started;
}
