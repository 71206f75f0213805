import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DataSetAvailable, decodeMessage, streams, subjects } from '@fieldbeam/protocol';
import type { JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import type pg from 'pg';
import type { Logger } from 'pino';
import { datasetObjectKey } from '../datasets/builder.js';
import { type DeadLetter, insertDeadLetters } from '../db/dead-letters.js';
import { CloudError, CloudErrorCode } from '../errors.js';
import type { CloudMetrics } from '../metrics.js';
import { type DurableConsumer, startDurableConsumer } from '../nats/durable-consumer.js';
import { asCloudError, describeError, retryDelayMs } from '../retry.js';
import type { ObjectStore } from '../storage/object-store.js';
import { arrowFileToGeoParquet, PARQUET_CONTENT_TYPE } from './geoparquet.js';

export type ExporterName = 'geoparquet' | 'api';

interface ExportDone {
  key: string | null;
  rows: number | null;
  bytes: number | null;
}

/**
 * What one exporter does with one announced version; must be safe to repeat. It throws a
 * `CloudError` saying whether a retry can help; anything else it throws counts as an object-store
 * failure (the one step that talks to another system).
 */
type ExportFn = (e: DataSetAvailable) => Promise<ExportDone>;

/** How an exporter's durable consumer retries and when it gives up. */
export interface ExportRetry {
  /** Deliveries of one version before a retryable failure is given up (dead-lettered too). */
  maxDeliver: number;
  /** Wait before the first retry (ms); doubles per try, at most 5 min. */
  firstRetryMs: number;
}

export const DEFAULT_EXPORT_RETRY: ExportRetry = { maxDeliver: 20, firstRetryMs: 2000 };

const storeFailure = (doing: string) => (err: unknown) =>
  new CloudError(
    CloudErrorCode.OBJECT_STORE,
    `object store: ${doing} failed: ${(err as Error)?.message ?? String(err)}`,
    true,
    { cause: err },
  );

/**
 * Runs an exporter as its own durable consumer of `fb.dataset.>`. Idempotent on (dataset, window,
 * version) through `dataset_exports`: a version already exported is acknowledged and skipped. A
 * version that cannot be exported (missing or damaged object, unknown dataset, data the encoder
 * refuses) is dead-lettered with its reason and terminated at once; one that failed for a cause
 * that may pass is retried with growing delays, and dead-lettered too after `maxDeliver` tries.
 */
async function startExporter(
  deps: { js: JetStreamClient; jsm: JetStreamManager; pool: pg.Pool; log: Logger; metrics: CloudMetrics },
  name: ExporterName,
  durable: string,
  run: ExportFn,
  retry: ExportRetry,
): Promise<DurableConsumer> {
  const { pool, log, metrics } = deps;
  const source = `exporter:${name}`;
  return startDurableConsumer(deps, {
    stream: streams.DATASETS.name,
    durable,
    filterSubject: subjects.datasetAll,
    batch: 8,
    ackWaitMs: 60_000,
    maxDeliver: retry.maxDeliver,
    retryDelayMs: (n) => retryDelayMs(n, retry.firstRetryMs),
    async handle(msgs) {
      const dead: DeadLetter[] = [];
      const again: JsMsg[] = [];
      const given: JsMsg[] = [];
      for (const m of msgs) {
        const checked = decodeMessage(DataSetAvailable, m.data);
        if (!checked.ok) {
          dead.push({
            subject: m.subject,
            streamSeq: m.seq,
            reason: checked.reason,
            payload: m.data,
            source,
            code: CloudErrorCode.MESSAGE_INVALID,
          });
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
        let out: ExportDone;
        try {
          out = await run(e);
        } catch (thrown) {
          const err = asCloudError(thrown, storeFailure('export'));
          const attempt = m.info.deliveryCount;
          const what = { exporter: name, dataset: e.dataset, window: e.start, version: e.version };
          metrics.exports.inc({ exporter: name, outcome: 'failed' });
          metrics.exportFailures.inc({ exporter: name, code: err.code, retryable: String(err.retryable) });
          if (err.retryable && attempt < retry.maxDeliver) {
            const retryMs = retryDelayMs(attempt, retry.firstRetryMs);
            log.warn(
              { ...what, code: err.code, err: err.message, attempt, retryMs },
              'export failed; will retry',
            );
            again.push(m);
            continue;
          }
          const reason = err.retryable
            ? `${describeError(err)} (given up after ${attempt} tries)`
            : describeError(err);
          log.error({ ...what, code: err.code, err: err.message, attempt }, 'export given up; dead-lettered');
          dead.push({
            subject: m.subject,
            streamSeq: m.seq,
            reason,
            payload: m.data,
            source,
            code: err.code,
          });
          given.push(m);
          continue;
        }
        await pool.query(
          `INSERT INTO dataset_exports (exporter, dataset, window_start, version, key, rows, bytes)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
          [name, e.dataset, e.start, e.version, out.key, out.rows, out.bytes],
        );
        timer();
        metrics.exports.inc({ exporter: name, outcome: 'exported' });
        log.info({ exporter: name, dataset: e.dataset, window: e.start, version: e.version }, 'exported');
      }
      // Written before the messages are terminated: a failure here retries the whole batch, and the
      // versions exported meanwhile are skipped on the next delivery.
      await insertDeadLetters(pool, dead);
      for (const d of dead) metrics.datasetDeadLetters.inc({ source, code: d.code ?? '' });
      return { retry: again, terminate: given };
    },
  });
}

/** The builder writes the object before it announces the version: missing, it stays missing. */
const missingObject = (e: DataSetAvailable) =>
  new CloudError(
    CloudErrorCode.EXPORT_INPUT_MISSING,
    `object ${e.key} of ${e.dataset} version ${e.version} is missing from the object store; rebuild the window (fieldbeam-cloud rebuild ${e.dataset} ${e.start})`,
    false,
  );

/**
 * Copies a version's Arrow object to `path` (streamed, not held in memory) and checks it is the one
 * announced.
 */
async function arrowOf(store: ObjectStore, e: DataSetAvailable, path: string): Promise<void> {
  const object = await store.getStream(e.key).catch((err: unknown) => {
    throw storeFailure(`reading ${e.key}`)(err);
  });
  if (!object) throw missingObject(e);
  const hash = createHash('sha256');
  await pipeline(
    object.body,
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const c of chunks) {
        hash.update(c);
        yield c;
      }
    },
    createWriteStream(path),
  ).catch((err: unknown) => {
    throw storeFailure(`reading ${e.key}`)(err);
  });
  const sha = hash.digest('hex');
  if (sha !== e.sha256) {
    throw new CloudError(
      CloudErrorCode.EXPORT_INPUT_INVALID,
      `object ${e.key} has sha256 ${sha}, announced ${e.sha256}; rebuild the window (fieldbeam-cloud rebuild ${e.dataset} ${e.start})`,
      false,
    );
  }
}

/** The dataset must still be configured: its files would otherwise land where nothing serves them. */
function requireDataset(datasets: ReadonlySet<string>, e: DataSetAvailable): void {
  if (!datasets.has(e.dataset)) {
    throw new CloudError(
      CloudErrorCode.DATASET_UNKNOWN,
      `dataset ${e.dataset} is not in this collector's datasets file (FB_DATASETS_FILE); version ${e.version} of window ${e.start} is not exported`,
      false,
    );
  }
}

/**
 * GeoParquet next to the Arrow object: `datasets/<name>/<window>/<version>.parquet`. A build that ran
 * with the GeoParquet exporter configured wrote it already, from the same batches, before announcing
 * the version (each build has its own version, so an object under that key is that build's): it is
 * taken as it is. Otherwise (an older build, or one whose encoder failed) the Arrow object is read
 * back and encoded here.
 */
export function geoParquetExport(store: ObjectStore, datasets: ReadonlySet<string>): ExportFn {
  return async (e) => {
    requireDataset(datasets, e);
    const key = datasetObjectKey(e.dataset, new Date(e.start), e.version, 'parquet');
    const built = await store.head(key).catch((err: unknown) => {
      throw storeFailure(`reading ${key}`)(err);
    });
    if (built) return { key, rows: e.rows, bytes: built.size };
    const dir = await mkdtemp(join(tmpdir(), 'fieldbeam-export-'));
    let encoded: { parquet: Uint8Array; rows: number };
    try {
      const arrow = join(dir, 'window.arrow');
      await arrowOf(store, e, arrow);
      try {
        encoded = await arrowFileToGeoParquet(arrow);
      } catch (err) {
        throw new CloudError(
          CloudErrorCode.EXPORT_ENCODE,
          `GeoParquet encoding of ${e.key} failed: ${(err as Error)?.message ?? String(err)}`,
          false,
          { cause: err },
        );
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const { parquet, rows } = encoded;
    if (rows !== e.rows) {
      throw new CloudError(
        CloudErrorCode.EXPORT_INPUT_INVALID,
        `object ${e.key} has ${rows} rows, announced ${e.rows}`,
        false,
      );
    }
    await store.put(key, parquet, PARQUET_CONTENT_TYPE).catch((err: unknown) => {
      throw storeFailure(`writing ${key}`)(err);
    });
    return { key, rows, bytes: parquet.byteLength };
  };
}

/** The read API's catalog: a version becomes downloadable through the API once checked here. */
export function apiCatalogExport(store: ObjectStore, datasets: ReadonlySet<string>): ExportFn {
  return async (e) => {
    requireDataset(datasets, e);
    const info = await store.head(e.key).catch((err: unknown) => {
      throw storeFailure(`reading ${e.key}`)(err);
    });
    if (!info) throw missingObject(e);
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
  opts: {
    exporters: readonly ExporterName[];
    durablePrefix: string;
    /** Names of the configured datasets: a version of any other is dead-lettered. */
    datasets: readonly string[];
    retry?: ExportRetry;
  },
): Promise<DurableConsumer[]> {
  const started: DurableConsumer[] = [];
  const datasets = new Set(opts.datasets);
  try {
    for (const name of opts.exporters) {
      const run =
        name === 'geoparquet'
          ? geoParquetExport(deps.store, datasets)
          : apiCatalogExport(deps.store, datasets);
      started.push(
        await startExporter(
          deps,
          name,
          `${opts.durablePrefix}-${name}`,
          run,
          opts.retry ?? DEFAULT_EXPORT_RETRY,
        ),
      );
    }
  } catch (err) {
    await Promise.all(started.map((c) => c.close()));
    throw err;
  }
  return started;
}
