import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type ResourceLimits, Worker } from 'node:worker_threads';
import { batchLimits, batchV2Limits } from '@fieldbeam/protocol';
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
  /** Requests in the order sent: a thread answers them in that order. */
  pending: Map<number, Pending>;
}

/**
 * The message a decode thread was working on when it ended (it exited, threw outside a decode or ran
 * out of memory): that message is the likely cause, and decoding it again may end a thread again.
 */
export class DecodeThreadDied extends Error {
  override readonly name = 'DecodeThreadDied';
  constructor(
    message: string,
    /** It ran out of its heap (`DECODE_THREAD_LIMITS`): not a message to decode on the main thread. */
    readonly outOfMemory: boolean,
  ) {
    super(message);
  }
}

/**
 * A message that was waiting on a thread that ended while decoding another one: it did nothing wrong
 * and can be decoded again at once.
 */
export class DecodeInterrupted extends Error {
  override readonly name = 'DecodeInterrupted';
}

/** Decodes messages for ingest: on worker threads, or on the calling thread when there are none. */
export interface Decoder {
  readonly threads: number;
  /** Threads running now (a dead one is replaced after a short pause). */
  alive(): number;
  decode(subject: string, data: Uint8Array, window: TimeWindow): Promise<DecodedMessage>;
  close(): Promise<void>;
}

export interface DecoderOptions {
  /** Told when a thread ends other than by `close` (it is replaced). */
  onThreadEnd?: (err: Error) => void;
  /** The thread's program instead of `decode-worker.js` (tests make threads that die). */
  script?: string | URL;
  /** The threads' memory bounds instead of `DECODE_THREAD_LIMITS`. */
  resourceLimits?: ResourceLimits;
  /** First pause before a dead thread is replaced; doubles while replacements die unused. */
  restartDelayMs?: number;
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

/**
 * A decode thread's heap, from the batch limits: the largest message (a v2 batch inflated to
 * `maxDecodedBytes`, or a v1 one of up to `maxBytes`) parsed into objects takes some 30 times its
 * bytes; with room for a few queued and the thread's own code. A message past that (a limit raised
 * without this, a decoder bug) ends the thread with an out-of-memory error instead of the collector.
 */
export const DECODE_THREAD_LIMITS: ResourceLimits = {
  maxOldGenerationSizeMb: Math.ceil(
    (64 * Math.max(batchV2Limits.maxDecodedBytes, batchLimits.maxBytes)) / (1024 * 1024) + 64,
  ),
};

/** The longest pause between replacements of threads that keep dying before any answer. */
const MAX_RESTART_DELAY_MS = 5_000;

/** Decoding on the calling thread. */
function inlineDecoder(): Decoder {
  const writer = new RowWriter(1024 * 1024);
  return {
    threads: 0,
    alive: () => 0,
    decode: async (subject, data, window) => decodeForCommit(subject, data, window, writer),
    close: async () => {},
  };
}

/**
 * A small pool of decode threads: JSON parsing, v2 decompression, validation and row encoding run
 * beside the main thread, which keeps only NATS, Postgres and the bookkeeping of rounds. Each message
 * goes to the thread with the fewest waiting. A thread that ends fails the message it was decoding
 * (`DecodeThreadDied`) and those queued behind it (`DecodeInterrupted`, to be decoded again), and is
 * replaced after a pause that doubles while replacements die before answering, so a crash loop cannot
 * spin. While no thread runs, messages are decoded on the calling thread.
 */
export function startDecoder(threads: number, opts: DecoderOptions = {}): Decoder {
  const file = opts.script ?? (decodeThreadsAvailable() ? WORKER_FILE : undefined);
  if (threads <= 0 || !file) return inlineDecoder();
  const baseDelay = opts.restartDelayMs ?? 100;
  const limits = opts.resourceLimits ?? DECODE_THREAD_LIMITS;
  let nextId = 1;
  let closing = false;
  /** One slot per thread; empty while its replacement waits. */
  const slots: (Thread | undefined)[] = [];
  const timers = new Set<NodeJS.Timeout>();
  /** Each slot's next pause before a replacement: doubled by a thread dying before it answered. */
  const delays: number[] = [];
  /** For the moments when no thread runs. */
  const here = inlineDecoder();

  const spawn = (slot: number): void => {
    // No inherited flags: a test runner's `--conditions development` would point the thread's
    // package imports at TypeScript sources it cannot load.
    const worker = new Worker(file, { execArgv: [], resourceLimits: limits });
    const t: Thread = { worker, pending: new Map() };
    let cause: Error | undefined;
    worker.on('message', (m: Reply) => {
      delays[slot] = baseDelay; // a thread that answers is a working one
      const p = t.pending.get(m.id);
      if (!p) return;
      t.pending.delete(m.id);
      if (t.pending.size === 0) worker.unref();
      if (m.error !== undefined) p.reject(new Error(`decode thread: ${m.error}`));
      else p.resolve(m.r);
    });
    worker.on('error', (err) => {
      cause = err;
    });
    worker.on('exit', (code) => {
      if (slots[slot] === t) slots[slot] = undefined;
      const why = cause
        ? `${(cause as NodeJS.ErrnoException).code ?? cause.name}: ${cause.message}`
        : `exit code ${code}`;
      // A thread answers in order: the first still waiting is the one it was decoding.
      let first = true;
      for (const p of t.pending.values()) {
        p.reject(
          first
            ? new DecodeThreadDied(
                `the decode thread ended while decoding this message (${why})`,
                (cause as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY',
              )
            : new DecodeInterrupted(`the decode thread ended while decoding another message (${why})`),
        );
        first = false;
      }
      t.pending.clear();
      if (closing) return;
      const delay = delays[slot] ?? baseDelay;
      opts.onThreadEnd?.(new Error(`decode thread ended (${why}); it is replaced in ${delay} ms`));
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!closing) spawn(slot);
      }, delay);
      timer.unref();
      timers.add(timer);
      delays[slot] = Math.min(delay * 2, MAX_RESTART_DELAY_MS);
    });
    // Idle threads do not keep the collector's process alive.
    worker.unref();
    slots[slot] = t;
  };
  for (let i = 0; i < threads; i++) spawn(i);

  return {
    threads,
    alive: () => slots.filter((t) => t !== undefined).length,
    decode(subject, data, window) {
      let t: Thread | undefined;
      for (const c of slots) if (c && (!t || c.pending.size < t.pending.size)) t = c;
      if (!t) return here.decode(subject, data, window);
      const thread = t;
      const id = nextId++;
      // A copy of its own: a message's bytes may be a view into a larger buffer of the NATS client,
      // which a transfer would take away and a structured clone would copy whole.
      // (`new Uint8Array(view)` copies; a Buffer's `slice` would not.)
      const bytes = new Uint8Array(data);
      return new Promise<DecodedMessage>((resolve, reject) => {
        thread.pending.set(id, { resolve, reject });
        // Held while it has work: an idle thread does not keep the process alive.
        thread.worker.ref();
        const req: DecodeRequest = { id, subject, data: bytes, window };
        thread.worker.postMessage(req, [bytes.buffer]);
      });
    },
    async close() {
      closing = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all(slots.map((t) => t?.worker.terminate()));
    },
  };
}
