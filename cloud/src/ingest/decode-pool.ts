import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { TimeWindow } from './batch-check.js';
import { RowWriter } from './copy-binary.js';
import { type DecodedMessage, decodeForCommit } from './decode-batch.js';
import type { DecodeRequest } from './decode-worker.js';

type Reply = { id: number; r: DecodedMessage; error?: undefined } | { id: number; error: string };

interface Pending {
  resolve(r: DecodedMessage): void;
  reject(err: Error): void;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Whether it ever answered: one that dies before that is not started again. */
  answered: boolean;
}

/** Decodes messages for ingest: on worker threads, or on the calling thread when there are none. */
export interface Decoder {
  readonly threads: number;
  decode(subject: string, data: Uint8Array, window: TimeWindow): Promise<DecodedMessage>;
  close(): Promise<void>;
}

/**
 * The compiled worker script beside this module. Run from TypeScript sources (tests importing them),
 * there is none: a thread cannot load the sources, and decoding stays on the calling thread. (Written
 * without `new URL(..., import.meta.url)`, which test bundlers rewrite to the source file.)
 */
const WORKER_FILE = import.meta.url.endsWith('/decode-pool.js')
  ? fileURLToPath(`${import.meta.url.slice(0, -'decode-pool.js'.length)}decode-worker.js`)
  : undefined;

/** Whether decode threads can start here (see `WORKER_FILE`). */
export const decodeThreadsAvailable = () => WORKER_FILE !== undefined && existsSync(WORKER_FILE);

/** Decoding on the calling thread. */
function inlineDecoder(): Decoder {
  const writer = new RowWriter(1024 * 1024);
  return {
    threads: 0,
    decode: async (subject, data, window) => decodeForCommit(subject, data, window, writer),
    close: async () => {},
  };
}

/**
 * A small pool of decode threads: JSON parsing, v2 decompression, validation and row encoding run
 * beside the main thread, which keeps only NATS, Postgres and the bookkeeping of rounds. Each message
 * goes to the thread with the fewest waiting. A thread that dies fails what it held (the round is
 * redelivered) and is replaced.
 */
export function startDecoder(threads: number, onThreadError?: (err: Error) => void): Decoder {
  if (threads <= 0 || !WORKER_FILE || !decodeThreadsAvailable()) return inlineDecoder();
  const file = WORKER_FILE;
  let nextId = 1;
  let closing = false;
  const pool: Thread[] = [];
  /** Decoding here once threads cannot start (a thread died before its first answer). */
  let fallback: Decoder | undefined;

  const spawn = (): Thread => {
    // No inherited flags: a test runner's `--conditions development` would point the thread's
    // package imports at TypeScript sources it cannot load.
    const t: Thread = { worker: new Worker(file, { execArgv: [] }), pending: new Map(), answered: false };
    const fail = (err: Error) => {
      for (const p of t.pending.values()) p.reject(err);
      t.pending.clear();
    };
    t.worker.on('message', (m: Reply) => {
      t.answered = true;
      const p = t.pending.get(m.id);
      if (!p) return;
      t.pending.delete(m.id);
      if (t.pending.size === 0) t.worker.unref();
      if (m.error !== undefined) p.reject(new Error(`decode thread: ${m.error}`));
      else p.resolve(m.r);
    });
    t.worker.on('error', (err) => {
      onThreadError?.(err);
      fail(err);
    });
    t.worker.on('exit', (code) => {
      fail(new Error(`decode thread ended (code ${code})`));
      const at = pool.indexOf(t);
      if (closing || at < 0) return;
      if (t.answered) pool[at] = spawn();
      else {
        pool.splice(at, 1);
        if (pool.length === 0) fallback ??= inlineDecoder();
      }
    });
    // Idle threads do not keep the collector's process alive.
    t.worker.unref();
    return t;
  };
  for (let i = 0; i < threads; i++) pool.push(spawn());

  return {
    threads,
    decode(subject, data, window) {
      if (fallback) return fallback.decode(subject, data, window);
      let t = pool[0] as Thread;
      for (const c of pool) if (c.pending.size < t.pending.size) t = c;
      const id = nextId++;
      // A copy of its own: a message's bytes may be a view into a larger buffer of the NATS client,
      // which a transfer would take away and a structured clone would copy whole.
      // (`new Uint8Array(view)` copies; a Buffer's `slice` would not.)
      const bytes = new Uint8Array(data);
      return new Promise<DecodedMessage>((resolve, reject) => {
        t.pending.set(id, { resolve, reject });
        // Held while it has work: an idle thread does not keep the process alive.
        t.worker.ref();
        const req: DecodeRequest = { id, subject, data: bytes, window };
        t.worker.postMessage(req, [bytes.buffer]);
      });
    },
    async close() {
      closing = true;
      await Promise.all(pool.map((t) => t.worker.terminate()));
    },
  };
}
