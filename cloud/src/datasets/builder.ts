import { createHash } from 'node:crypto';
import { type DataSetAvailable, subjects } from '@fieldbeam/protocol';
import type { JetStreamClient } from '@nats-io/jetstream';
import { tableToIPC } from 'apache-arrow';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { CloudMetrics } from '../metrics.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { DatasetDef } from './dataset-config.js';
import { readWindow } from './window-reader.js';
import type { BuiltVersion, Claim, VersionRow, WindowStore } from './window-store.js';
import { windowKey } from './windows.js';

export const ARROW_CONTENT_TYPE = 'application/vnd.apache.arrow.file';

/** Where version `version` of a window lives: `datasets/<name>/<window start>/<version>.arrow`. */
export function datasetObjectKey(dataset: string, windowStart: Date, version: number, ext = 'arrow'): string {
  return `datasets/${dataset}/${windowKey(windowStart.getTime())}/${version}.${ext}`;
}

/**
 * Builds one window into an Arrow IPC file in the object store and returns what was written. Pure
 * work: no lease or bookkeeping (the builder loop and the benchmark both call it).
 */
export async function buildWindowObject(
  pool: pg.Pool,
  store: ObjectStore,
  def: DatasetDef,
  w: { windowStart: Date; windowEnd: Date; version: number; generation: number; provisional: boolean },
): Promise<BuiltVersion> {
  const started = performance.now();
  const metadata = new Map([
    ['fieldbeam:dataset', def.name],
    ['fieldbeam:window_start', w.windowStart.toISOString()],
    ['fieldbeam:window_end', w.windowEnd.toISOString()],
    ['fieldbeam:version', String(w.version)],
    ['fieldbeam:generation', String(w.generation)],
    ['fieldbeam:provisional', String(w.provisional)],
  ]);
  const table = await readWindow(pool, def, w.windowStart, w.windowEnd, metadata);
  const bytes = tableToIPC(table, 'file');
  const key = datasetObjectKey(def.name, w.windowStart, w.version);
  await store.put(key, bytes, ARROW_CONTENT_TYPE);
  return {
    key,
    rows: table.numRows,
    bytes: bytes.byteLength,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    buildMs: performance.now() - started,
  };
}

export interface BuilderOptions {
  datasets: readonly DatasetDef[];
  /** This process in leases and build records. */
  owner: string;
  pollMs: number;
  leaseMs: number;
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

  async function build(claim: Claim): Promise<void> {
    const def = byName.get(claim.dataset);
    if (!def) return;
    const log1 = log.child({
      dataset: claim.dataset,
      window: claim.windowStart.toISOString(),
      version: claim.version,
    });
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
    try {
      const built = await buildWindowObject(pool, store, def, claim);
      clearInterval(renew);
      const ours = await windows.complete(claim, opts.owner, built, def.grace);
      timer();
      if (!ours) {
        metrics.builds.inc({ dataset: def.name, outcome: 'superseded' });
        log1.warn('build superseded (lease ran out); not recorded');
        return;
      }
      metrics.builds.inc({ dataset: def.name, outcome: 'built' });
      metrics.buildRows.inc({ dataset: def.name }, built.rows);
      log1.info({ rows: built.rows, key: built.key, ms: Math.round(built.buildMs) }, 'window built');
      await announce({ ...claim, ...built }).catch((err: Error) =>
        log1.warn({ err: err.message }, 'DataSetAvailable publish failed; will retry'),
      );
    } catch (err) {
      clearInterval(renew);
      metrics.builds.inc({ dataset: def.name, outcome: 'failed' });
      const retryMs = Math.min(300_000, 1000 * 2 ** Math.min(8, claim.attempts - 1));
      log1.error({ err: (err as Error).message, retryMs }, 'build failed');
      await windows.fail(claim, opts.owner, (err as Error).message, retryMs).catch(() => {});
    }
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
        if (!abort.signal.aborted) log.warn({ err: (err as Error).message }, 'builder tick failed');
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
