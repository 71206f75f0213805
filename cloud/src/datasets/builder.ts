import { createHash } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DataSetAvailable, subjects } from '@fieldbeam/protocol';
import type { JetStreamClient } from '@nats-io/jetstream';
import { type RecordBatch, RecordBatchFileWriter } from 'apache-arrow';
import type pg from 'pg';
import type { Logger } from 'pino';
import { insertDeadLetters } from '../db/dead-letters.js';
import { databaseError } from '../db/pg-errors.js';
import { CloudError, CloudErrorCode } from '../errors.js';
import { PARQUET_CONTENT_TYPE } from '../export/geoparquet.js';
import { type GeoParquetFile, openGeoParquetFile } from '../export/geoparquet-file.js';
import type { CloudMetrics } from '../metrics.js';
import { asCloudError, describeError, retryDelayMs } from '../retry.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { DatasetDef } from './dataset-config.js';
import { openWindow, type WindowBatches } from './window-reader.js';
import type { BuiltVersion, Claim, VersionRow, WindowStore } from './window-store.js';
import { windowKey } from './windows.js';

export const ARROW_CONTENT_TYPE = 'application/vnd.apache.arrow.file';

/** Where version `version` of a window lives: `datasets/<name>/<window start>/<version>.arrow`. */
export function datasetObjectKey(dataset: string, windowStart: Date, version: number, ext = 'arrow'): string {
  return `datasets/${dataset}/${windowKey(windowStart.getTime())}/${version}.${ext}`;
}

/** What a build wrote: the version's Arrow object, and its GeoParquet when the build made it too. */
export interface BuiltWindow extends BuiltVersion {
  /** The GeoParquet object (`<version>.parquet`), or why the build left it to the exporter. */
  parquet?: { key: string; bytes: number } | { skipped: string };
}

/**
 * Builds one window into an Arrow IPC file in the object store and returns what was written. Pure
 * work: no lease or bookkeeping (the builder loop and the benchmark both call it).
 *
 * With `geoParquet`, the same batches are written as GeoParquet while the window is read (the
 * encoder runs while Postgres sends the next slices) and put next to the Arrow object, where the
 * GeoParquet exporter finds it instead of reading the Arrow object back. A GeoParquet the build
 * cannot encode is left to the exporter, which dead-letters it with its reason.
 */
export async function buildWindowObject(
  pool: pg.Pool,
  store: ObjectStore,
  def: DatasetDef,
  w: { windowStart: Date; windowEnd: Date; version: number; generation: number; provisional: boolean },
  opts: { geoParquet?: boolean } = {},
): Promise<BuiltWindow> {
  const started = performance.now();
  const metadata = new Map([
    ['fieldbeam:dataset', def.name],
    ['fieldbeam:window_start', w.windowStart.toISOString()],
    ['fieldbeam:window_end', w.windowEnd.toISOString()],
    ['fieldbeam:version', String(w.version)],
    ['fieldbeam:generation', String(w.generation)],
    ['fieldbeam:provisional', String(w.provisional)],
  ]);
  if (def.aggregate) {
    // Readers learn the rows are statistics, and over what, from the file itself.
    metadata.set('fieldbeam:aggregate_every_ms', String(def.aggregate.every));
    metadata.set('fieldbeam:aggregate_stats', def.aggregate.stats.join(','));
    metadata.set('fieldbeam:aggregate_exclude_flags', def.aggregate.excludeFlags.join(','));
  }
  const window = await openWindow(pool, def, w.windowStart, w.windowEnd, metadata).catch((err: unknown) => {
    throw databaseError(err, `reading window ${w.windowStart.toISOString()} of ${def.name}`);
  });
  const key = datasetObjectKey(def.name, w.windowStart, w.version);
  const dir = await mkdtemp(join(tmpdir(), 'fieldbeam-build-'));
  try {
    const parquetPath = join(dir, 'window.parquet');
    const { rows, sha256, path, parquet } = await writeArrowFile(
      window,
      join(dir, 'window.arrow'),
      opts.geoParquet ? parquetPath : undefined,
      (err) => databaseError(err, `reading window ${w.windowStart.toISOString()} of ${def.name}`),
    );
    const size = await putFile(store, key, path, ARROW_CONTENT_TYPE);
    const built: BuiltWindow = { key, rows, bytes: size, sha256, buildMs: 0 };
    if (parquet && 'skipped' in parquet) built.parquet = parquet;
    else if (parquet) {
      // After the Arrow object: a GeoParquet is never there without the object it was made from.
      const pkey = datasetObjectKey(def.name, w.windowStart, w.version, 'parquet');
      built.parquet = { key: pkey, bytes: await putFile(store, pkey, parquetPath, PARQUET_CONTENT_TYPE) };
    }
    built.buildMs = performance.now() - started;
    return built;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Puts a local file (sent from the file where the store can: nothing held in memory); its size. */
async function putFile(store: ObjectStore, key: string, path: string, contentType: string): Promise<number> {
  const putFile = store.putFile?.bind(store);
  const bytes = putFile ? undefined : await readFile(path);
  const size = bytes ? bytes.byteLength : (await stat(path)).size;
  await (putFile ? putFile(key, path, contentType) : store.put(key, bytes as Buffer, contentType)).catch(
    (err: unknown) => {
      throw new CloudError(
        CloudErrorCode.OBJECT_STORE,
        `object store: writing ${key} failed: ${(err as Error)?.message ?? String(err)}`,
        true,
        { cause: err },
      );
    },
  );
  return size;
}

/**
 * Writes a window's batches to an Arrow IPC file at `path` as they are read (one slice in memory at a
 * time, dictionaries sent as deltas), hashing the bytes on the way; with `parquetPath`, to a
 * GeoParquet file there too. The file format keeps its schema in the footer, written last: that is
 * what lets the value column's CF metadata (which depends on every row) be complete although the
 * rows were never all in memory (the GeoParquet's footer is rewritten with it the same way).
 */
async function writeArrowFile(
  window: WindowBatches,
  path: string,
  parquetPath: string | undefined,
  readFailure: (err: unknown) => Error,
): Promise<{
  rows: number;
  sha256: string;
  path: string;
  parquet?: { written: true } | { skipped: string };
}> {
  const writer = new RecordBatchFileWriter();
  const hash = createHash('sha256');
  const fd = openSync(path, 'w');
  let geo: GeoParquetFile | undefined = parquetPath ? openGeoParquetFile(parquetPath) : undefined;
  let skipped: string | undefined;
  // The GeoParquet is the exporter's to make when the build cannot: an encoder failure stops only it.
  const dropParquet = async (err: unknown): Promise<undefined> => {
    skipped ??= `GeoParquet encoding failed: ${(err as Error)?.message ?? String(err)}`;
    const g = geo;
    geo = undefined;
    await g?.abort();
    return undefined;
  };
  // Written as they come, synchronously: the queue is emptied each time the reader awaits a slice.
  const drained = (async () => {
    for await (const chunk of writer) {
      hash.update(chunk);
      writeSync(fd, chunk);
    }
  })();
  let rows = 0;
  let failure: unknown;
  try {
    writer.reset(undefined, window.schema);
    const it = window.batches[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<RecordBatch>;
      try {
        next = await it.next();
      } catch (err) {
        throw readFailure(err);
      }
      if (next.done) break;
      try {
        writer.write(next.value);
      } catch (err) {
        throw new CloudError(
          CloudErrorCode.BUILD_ENCODE,
          `Arrow encoding of ${next.value.numRows} rows failed: ${(err as Error)?.message ?? String(err)}`,
          false,
          { cause: err },
        );
      }
      rows += next.value.numRows;
      // Waits for the encoder to take the batch (it encodes while the next slices arrive).
      if (geo) await geo.write(next.value).catch(dropParquet);
      // Lets the file writes catch up so encoded batches do not pile up in the writer's queue.
      await new Promise((resolve) => setImmediate(resolve));
    }
  } catch (err) {
    failure = err;
  }
  if (failure) writer.abort(failure as Error);
  else writer.close();
  await drained.catch((err: unknown) => {
    failure ??= err;
  });
  closeSync(fd);
  let parquet: { written: true } | { skipped: string } | undefined;
  if (parquetPath) {
    if (failure) await geo?.abort();
    else {
      await geo?.close(window.schema).catch(dropParquet);
      parquet = skipped ? { skipped } : { written: true };
    }
  }
  if (failure) throw failure;
  return { rows, sha256: hash.digest('hex'), path, ...(parquet ? { parquet } : {}) };
}

export interface BuilderOptions {
  datasets: readonly DatasetDef[];
  /** This process in leases and build records. */
  owner: string;
  pollMs: number;
  leaseMs: number;
  /** Tries of one window before a failure that may pass is given up too; default 20. */
  maxAttempts?: number;
  /** Wait before a failed build's first retry (ms), doubling per try up to 5 min; default 1000. */
  firstRetryMs?: number;
  /** Builds write the GeoParquet too (when the GeoParquet exporter runs); see `buildWindowObject`. */
  geoParquet?: boolean;
}

export interface Builder {
  /** Looks for due windows now instead of at the next tick. */
  wake(): void;
  close(): Promise<void>;
}

function event(
  v: Pick<
    VersionRow,
    'dataset' | 'windowStart' | 'windowEnd' | 'version' | 'key' | 'rows' | 'sha256' | 'provisional'
  >,
): DataSetAvailable {
  return {
    v: 1,
    dataset: v.dataset,
    start: v.windowStart.toISOString(),
    end: v.windowEnd.toISOString(),
    version: v.version,
    key: v.key,
    rows: v.rows,
    sha256: v.sha256,
    provisional: v.provisional,
  };
}

/**
 * The builder loop. On a timer (not only on new data) it claims due windows one at a time, keeps the
 * lease alive while building, records the version, and announces it on `fb.dataset.<name>`. A
 * version recorded but not announced (publish failed, process died in between) is announced again by
 * any builder later; the message id makes that a no-op if the first one did get through.
 */
export async function startBuilder(
  deps: {
    pool: pg.Pool;
    windows: WindowStore;
    store: ObjectStore;
    js: JetStreamClient;
    log: Logger;
    metrics: CloudMetrics;
  },
  opts: BuilderOptions,
): Promise<Builder> {
  const { pool, windows, store, js, log, metrics } = deps;
  const maxAttempts = opts.maxAttempts ?? 20;
  const firstRetryMs = opts.firstRetryMs ?? 1000;
  const byName = new Map(opts.datasets.map((d) => [d.name, d]));
  const abort = new AbortController();
  const encoder = new TextEncoder();
  let wakeUp: (() => void) | undefined;

  async function announce(v: Parameters<typeof event>[0]): Promise<void> {
    const e = event(v);
    await js.publish(subjects.dataset(v.dataset), encoder.encode(JSON.stringify(e)), {
      msgID: `${v.dataset}:${windowKey(v.windowStart.getTime())}:${v.version}`,
    });
    await windows.markAnnounced(v.dataset, v.windowStart, v.version);
  }

  /**
   * Records a failed build: retried after a growing delay when the cause may pass and tries are left;
   * otherwise the window is marked failed without a due time (visible in `fieldbeam-cloud datasets`
   * and the window metrics) and a dead letter keeps the reason, until new data or a rebuild.
   */
  async function failed(claim: Claim, err: CloudError, log1: Logger): Promise<void> {
    metrics.builds.inc({ dataset: claim.dataset, outcome: 'failed' });
    metrics.buildFailures.inc({ dataset: claim.dataset, code: err.code, retryable: String(err.retryable) });
    const giveUp = !err.retryable || claim.attempts >= maxAttempts;
    const reason =
      err.retryable && giveUp
        ? `${describeError(err)} (given up after ${claim.attempts} tries)`
        : describeError(err);
    const retryMs = giveUp ? null : retryDelayMs(claim.attempts, firstRetryMs);
    if (giveUp)
      log1.error(
        { code: err.code, err: err.message, attempts: claim.attempts },
        'build given up; window marked failed',
      );
    else
      log1.warn(
        { code: err.code, err: err.message, attempts: claim.attempts, retryMs },
        'build failed; will retry',
      );
    try {
      await windows.fail(claim, opts.owner, reason, retryMs);
      if (giveUp) {
        const window = {
          dataset: claim.dataset,
          window: claim.windowStart.toISOString(),
          version: claim.version,
          generation: claim.generation,
          attempts: claim.attempts,
        };
        await insertDeadLetters(pool, [
          {
            subject: subjects.dataset(claim.dataset),
            streamSeq: null,
            reason: `window ${window.window}: ${reason}`,
            payload: encoder.encode(JSON.stringify(window)),
            source: 'builder',
            code: err.code,
          },
        ]);
        metrics.datasetDeadLetters.inc({ source: 'builder', code: err.code });
      }
    } catch (recordErr) {
      // The lease runs out and the window is claimed again: the failure is tried once more, not lost.
      const e = databaseError(recordErr, 'recording a failed build');
      log1.error({ code: e.code, err: e.message }, 'could not record the failed build');
    }
  }

  async function build(claim: Claim): Promise<void> {
    const log1 = log.child({
      dataset: claim.dataset,
      window: claim.windowStart.toISOString(),
      version: claim.version,
    });
    const def = byName.get(claim.dataset);
    if (!def) {
      const err = new CloudError(
        CloudErrorCode.DATASET_UNKNOWN,
        `dataset ${claim.dataset} is not in this collector's datasets file (FB_DATASETS_FILE)`,
        false,
      );
      return failed(claim, err, log1);
    }
    log1.info({ generation: claim.generation, provisional: claim.provisional }, 'building window');
    const renew = setInterval(
      () => {
        windows.renew(claim, opts.owner, opts.leaseMs).then(
          (ours) => {
            if (!ours) log1.warn('lease lost during build; its result will be discarded');
          },
          (err: Error) => log1.warn({ err: err.message }, 'lease renewal failed'),
        );
      },
      Math.max(100, Math.floor(opts.leaseMs / 3)),
    );
    const timer = metrics.buildSeconds.startTimer({ dataset: def.name });
    let built: BuiltWindow;
    let ours: boolean;
    try {
      built = await buildWindowObject(pool, store, def, claim, { geoParquet: opts.geoParquet ?? false });
      clearInterval(renew);
      ours = await windows.complete(claim, opts.owner, built, def.grace).catch((err: unknown) => {
        throw databaseError(err, 'recording the build');
      });
    } catch (err) {
      clearInterval(renew);
      return failed(
        claim,
        asCloudError(err, (e) => databaseError(e, 'building the window')),
        log1,
      );
    }
    timer();
    if (!ours) {
      metrics.builds.inc({ dataset: def.name, outcome: 'superseded' });
      log1.warn('build superseded (lease ran out); not recorded');
      return;
    }
    metrics.builds.inc({ dataset: def.name, outcome: 'built' });
    metrics.buildRows.inc({ dataset: def.name }, built.rows);
    log1.info({ rows: built.rows, key: built.key, ms: Math.round(built.buildMs) }, 'window built');
    if (built.parquet && 'skipped' in built.parquet) {
      log1.warn({ err: built.parquet.skipped }, 'GeoParquet left to the exporter');
    }
    // Recorded but not announced: any builder announces it again later (see `unannounced`).
    await announce({ ...claim, ...built }).catch((err: Error) =>
      log1.warn({ err: err.message }, 'DataSetAvailable publish failed; will retry'),
    );
  }

  async function tick(): Promise<void> {
    for (const v of await windows.unannounced(Math.max(5000, opts.pollMs * 2))) {
      await announce(v).catch((err: Error) => log.warn({ err: err.message }, 're-announce failed'));
    }
    while (!abort.signal.aborted) {
      const claim = await windows.claim(opts.datasets, opts.owner, opts.leaseMs);
      if (!claim) break;
      await build(claim);
    }
  }

  const loop = (async () => {
    while (!abort.signal.aborted) {
      try {
        await tick();
      } catch (err) {
        if (!abort.signal.aborted) {
          const e = asCloudError(err, (x) => databaseError(x, 'looking for due windows'));
          log.warn({ code: e.code, err: e.message }, 'builder tick failed; tries again at the next tick');
        }
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          abort.signal.removeEventListener('abort', done);
          resolve();
        };
        const t = setTimeout(done, opts.pollMs);
        abort.signal.addEventListener('abort', done);
        wakeUp = done;
      });
      wakeUp = undefined;
    }
  })();

  return {
    wake: () => wakeUp?.(),
    async close() {
      abort.abort();
      await loop;
    },
  };
}
