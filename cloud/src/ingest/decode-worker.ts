import { parentPort } from 'node:worker_threads';
import type { TimeWindow } from './batch-check.js';
import { RowWriter } from './copy-binary.js';
import { decodeForCommit } from './decode-batch.js';

/** A request from the pool (decode-pool.ts): one message to decode. */
export interface DecodeRequest {
  id: number;
  subject: string;
  data: Uint8Array;
  window: TimeWindow;
}

// One writer per thread: its buffer grows to the largest batch once and is reused.
const writer = new RowWriter(1024 * 1024);
const port = parentPort;
if (!port) throw new Error('decode-worker.ts runs as a worker thread of the collector');
port.on('message', (m: DecodeRequest) => {
  try {
    const r = decodeForCommit(m.subject, m.data, m.window, writer);
    // The rows move to the main thread (transferred, not copied).
    port.postMessage(
      { id: m.id, r },
      r.ok ? [r.rows.bytes.buffer as ArrayBuffer, r.rows.offsets.buffer as ArrayBuffer] : [],
    );
  } catch (err) {
    port.postMessage({ id: m.id, error: (err as Error).message ?? String(err) });
  }
});
