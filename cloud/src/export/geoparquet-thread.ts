import { closeSync, openSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { tableFromIPC } from 'apache-arrow';
import { type GeoBatch, GeoParquetStream } from './geoparquet.js';
import { setParquetKeyValues } from './parquet-footer.js';

/**
 * The GeoParquet encoder's thread (see geoparquet-file.ts): batches come encoded (geometry added, as
 * IPC streams) and go into the wasm Parquet writer here, so the encoding runs beside the thread that reads the window. It
 * answers `taken` once the writer has taken a batch, and `done` or `error` at the end.
 */
export type ToThread = { batch: GeoBatch } | { end: Uint8Array } | { abort: true };
export type FromThread = { taken: true } | { done: true } | { error: string };

const port = parentPort;
if (!port) throw new Error('geoparquet-thread runs as a worker thread');
const path = (workerData as { path: string }).path;
const fd = openSync(path, 'w');
let stream: GeoParquetStream | undefined;
let closed = false;
const post = (m: FromThread) => port.postMessage(m);
const closeFile = () => {
  if (!closed) closeSync(fd);
  closed = true;
};

async function handle(m: ToThread): Promise<void> {
  if ('abort' in m) {
    await stream?.abort();
    closeFile();
    post({ done: true });
    return;
  }
  if ('batch' in m) {
    stream ??= new GeoParquetStream((chunk) => writeSync(fd, chunk));
    await stream.writeEncoded(m.batch);
    post({ taken: true });
    return;
  }
  const final = tableFromIPC(m.end).schema;
  const s = stream ?? new GeoParquetStream((chunk) => writeSync(fd, chunk));
  const footer = await s.close(final);
  closeFile();
  if (footer) await setParquetKeyValues(path, footer);
  post({ done: true });
}

let chain = Promise.resolve();
let failed = false;
port.on('message', (m: ToThread) => {
  // One at a time, in order; after a failure the rest is ignored (the builder has been told).
  chain = chain.then(async () => {
    if (failed) return;
    try {
      await handle(m);
    } catch (err) {
      failed = true;
      try {
        closeFile();
      } catch {
        // Already closed.
      }
      post({ error: (err as Error)?.message ?? String(err) });
    }
  });
});
