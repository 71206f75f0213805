import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type RecordBatch, type Schema, Table, tableToIPC } from 'apache-arrow';
import { encodeGeoBatch, GeoParquetStream } from './geoparquet.js';
import type { FromThread, ToThread } from './geoparquet-thread.js';
import { setParquetKeyValues } from './parquet-footer.js';

/**
 * A GeoParquet file at a path, written from a window's batches as a build reads them, its footer
 * completed by `close` with the schema as it stands after the last batch (see `GeoParquetStream`).
 */
export interface GeoParquetFile {
  /** Resolves once the encoder has taken the batch (at most one waits). */
  write(batch: RecordBatch): Promise<void>;
  close(final: Schema): Promise<void>;
  /** Stops; the file is of no use. */
  abort(): Promise<void>;
}

/**
 * The compiled thread script beside this module; run from TypeScript sources (tests importing them)
 * there is none, and the encoder runs on the calling thread. (Not `new URL(..., import.meta.url)`,
 * which test bundlers rewrite to the source file.)
 */
const THREAD_FILE = import.meta.url.endsWith('/geoparquet-file.js')
  ? fileURLToPath(`${import.meta.url.slice(0, -'geoparquet-file.js'.length)}geoparquet-thread.js`)
  : undefined;

/**
 * Opens `path` for a GeoParquet written from batches. The encoder (wasm, about as much CPU as
 * reading the rows) runs on a thread of its own where it can, so it overlaps the reading and
 * decoding of the next slices instead of taking turns with them on one thread.
 */
export function openGeoParquetFile(path: string): GeoParquetFile {
  if (THREAD_FILE && existsSync(THREAD_FILE)) return threadFile(THREAD_FILE, path);
  return inlineFile(path);
}

function inlineFile(path: string): GeoParquetFile {
  const fd = openSync(path, 'w');
  let closed = false;
  const closeFd = () => {
    if (!closed) closeSync(fd);
    closed = true;
  };
  let stream: GeoParquetStream | undefined;
  const out = (chunk: Uint8Array) => writeSync(fd, chunk);
  return {
    async write(batch) {
      stream ??= new GeoParquetStream(out);
      await stream.write(batch);
    },
    async close(final) {
      try {
        const footer = await (stream ?? new GeoParquetStream(out)).close(final);
        closeFd();
        if (footer) await setParquetKeyValues(path, footer);
      } finally {
        closeFd();
      }
    },
    async abort() {
      await stream?.abort();
      closeFd();
    },
  };
}

/** An IPC stream's bytes, handed over without a copy where they fill their buffer. */
function transferable(bytes: Uint8Array): { data: Uint8Array; transfer: ArrayBuffer[] } {
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  const data = whole ? bytes : bytes.slice();
  return { data, transfer: [data.buffer as ArrayBuffer] };
}

function threadFile(script: string, path: string): GeoParquetFile {
  // No inherited flags: a test runner's `--conditions development` would point the thread's
  // package imports at TypeScript sources it cannot load.
  const worker = new Worker(script, { execArgv: [], workerData: { path } });
  let waiting: { resolve: () => void; reject: (err: Error) => void } | undefined;
  let failure: Error | undefined;
  const fail = (err: Error) => {
    failure ??= err;
    waiting?.reject(failure);
    waiting = undefined;
  };
  worker.on('message', (m: FromThread) => {
    if ('error' in m) fail(new Error(m.error));
    else {
      waiting?.resolve();
      waiting = undefined;
    }
  });
  worker.on('error', (err) => fail(err));
  worker.on('exit', (code) => fail(new Error(`the GeoParquet thread ended (exit code ${code})`)));
  const ask = (m: ToThread, transfer: ArrayBuffer[] = []) =>
    new Promise<void>((resolve, reject) => {
      if (failure) {
        reject(failure);
        return;
      }
      waiting = { resolve, reject };
      worker.postMessage(m, transfer);
    });
  const end = async () => {
    await worker.terminate();
  };
  return {
    async write(batch) {
      if (batch.numRows === 0) return;
      // The geometry and the IPC stream made here: the thread hands the bytes to the encoder as they are.
      const { ipc, rows, bbox } = encodeGeoBatch(batch);
      const { data, transfer } = transferable(ipc);
      await ask({ batch: { ipc: data, rows, bbox } }, transfer);
    },
    async close(final) {
      try {
        const { data, transfer } = transferable(tableToIPC(new Table(final), 'stream'));
        await ask({ end: data }, transfer);
      } finally {
        await end();
      }
    },
    async abort() {
      try {
        await ask({ abort: true });
      } catch {
        // Stopped anyway.
      } finally {
        await end();
      }
    },
  };
}
