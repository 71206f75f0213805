import { Worker } from 'node:worker_threads';
import type { Observation } from '@fieldbeam/protocol';
import type { EdgeConfig } from '../config.js';
import { EdgeError, EdgeErrorCode } from '../errors.js';
import type { UplinkEvents } from '../forward/uplink.js';
import { monotonicMs } from '../outbox/clock-restamp.js';
import type { OutboxEvents } from '../outbox/open-outbox.js';
import type {
  DeliveryOutcome,
  KeptReject,
  MqttDelivery,
  Outbox,
  OutboxStats,
  RejectEntry,
  RetainedState,
} from '../outbox/outbox.js';
import {
  OUTCOME_CODES,
  type OutgoingAppend,
  outgoingRows,
  packAppends,
  type SettledError,
} from './handoff.js';
import type {
  BufferCall,
  BufferReport,
  BufferThreadData,
  FromBufferThread,
  ToBufferThread,
} from './messages.js';

export interface BufferThreadHandlers {
  outbox: OutboxEvents;
  uplink: UplinkEvents;
  /**
   * The thread failed (threw, ran out of memory, ended on its own): every append waiting on it has
   * been refused. The agent must stop: without the thread nothing is stored or sent.
   */
  onFatal(err: EdgeError): void;
  /**
   * At close, the thread did not say it was done within `EXIT_GRACE_MS` (or ended before saying so)
   * and was stopped. Not a failure: the file commits nothing it has not acknowledged, and what stayed
   * unsent stays in it, sent after the restart.
   */
  onCloseIncomplete?(detail: string): void;
}

/**
 * The hand-off is the group commit of the threaded agent: appends gather here while the buffer
 * thread commits, and a group goes over once the commit before it is reported and at least
 * `buffer.commit_window_ms` after the group before it; the buffer thread commits each group as it
 * comes (its own window is 0). A lone reading after a quiet spell therefore goes over and is committed
 * at once, and under load there is one message each way and one commit per window at most. The wait
 * is here and not also on the buffer thread: waiting on both sides made a reading wait for the commit
 * in progress, then a whole window on the other side, about twice the window at 1,000 readings/s. A
 * message and its answer cost about as much CPU as tens of readings (some 20 us, measured here) and
 * each wakes the other thread. Should a commit's report not come (appends held back under `block`
 * have none), the group goes over after this long.
 */
const HANDOFF_MAX_WAIT_MS = 2;

/**
 * A thread asked to close that has not said it is done after this long is stopped. Its own steps are
 * bounded well below this (the batches in flight, then the drain: see `buffer-worker.ts`), and it
 * stays below the agent's 15 s safety stop (`run-command.ts`), so a stop through a dead uplink is
 * still a clean one.
 */
export const EXIT_GRACE_MS = 8000;

interface Waiter {
  resolve(value: never): void;
  reject(err: Error): void;
}

const asError = (e: SettledError) =>
  new EdgeError((e.code as EdgeErrorCode | undefined) ?? EdgeErrorCode.BUFFER_THREAD, e.message, e.retryable);

/**
 * Starts the buffer thread (`buffer-worker.ts`: the buffer file, the forwarder and its JetStream
 * connection) and returns the `Outbox` that hands appends to it. Resolves once the file is open;
 * rejects with the thread's error when it cannot be opened. `script` replaces the thread's program
 * (tests make threads that fail).
 */
export function startBufferThread(
  config: EdgeConfig,
  capacityBytes: number,
  handlers: BufferThreadHandlers,
  opts: { script?: URL } = {},
): Promise<ThreadOutbox> {
  const data: BufferThreadData = { config, capacityBytes };
  const script = opts.script ?? new URL('./buffer-worker.js', import.meta.url);
  const worker = new Worker(script, { workerData: data });
  return new Promise((resolve, reject) => {
    const early = (err: Error) => reject(err);
    const exitEarly = (code: number) =>
      reject(
        new EdgeError(EdgeErrorCode.BUFFER_THREAD, `the buffer thread ended at start (code ${code})`, true),
      );
    worker.once('error', early);
    worker.once('exit', exitEarly);
    const starting = (m: FromBufferThread) => {
      // What the file reported while opening (moved aside as unreadable) comes before `ready`.
      if (dispatchEvent(handlers, m)) return;
      worker.off('message', starting);
      worker.off('error', early);
      worker.off('exit', exitEarly);
      if (m.t !== 'ready') {
        reject(new Error(`the buffer thread said ${m.t} before ready`));
        void worker.terminate();
        return;
      }
      resolve(
        new ThreadOutbox(
          worker,
          m.bufferId,
          m.bufferStart,
          m.report,
          handlers,
          config.buffer.commit_window_ms,
          config.buffer.reject_payload_bytes,
        ),
      );
    };
    worker.on('message', starting);
  });
}

/** Hands an event the thread reported to its handler; false for any other message. */
function dispatchEvent(handlers: BufferThreadHandlers, m: FromBufferThread): boolean {
  if (m.t === 'outbox') {
    const { name, args } = m.event;
    (handlers.outbox[name] as (...a: unknown[]) => void)(...args);
    return true;
  }
  if (m.t === 'uplink') {
    const { name, args } = m.event;
    (handlers.uplink[name] as (...a: unknown[]) => void)(...args);
    return true;
  }
  return false;
}

/**
 * The `Outbox` of the main thread while the buffer lives on its own thread. Appends made in one turn
 * of the event loop go over as one packed message (`packAppends`), each one's promise settles when
 * the thread reports its commit, and the account (`stats`) is the thread's latest report.
 */
export class ThreadOutbox implements Outbox {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private outgoing: OutgoingAppend[] = [];
  private outgoingRejects: { id: number; entry: RejectEntry }[] = [];
  /** The send to come, if one is scheduled (a timer while a commit is awaited, else an immediate). */
  private scheduled: { timer: NodeJS.Timeout } | { immediate: NodeJS.Immediate } | undefined;
  /** A group was sent and no commit has been reported since. */
  private awaitingCommit = false;
  /** When the last group went over (`performance.now()`), for `commitWindowMs`. */
  private lastSendMs = Number.NEGATIVE_INFINITY;
  private failed: EdgeError | undefined;
  private closing: Promise<void> | undefined;
  private closedByThread: (() => void) | undefined;
  private graceRanOut = false;

  constructor(
    private readonly worker: Worker,
    readonly bufferId: string,
    readonly bufferStart: number,
    private last: BufferReport,
    private readonly handlers: BufferThreadHandlers,
    /** The least time between two groups (`buffer.commit_window_ms`): see `HANDOFF_MAX_WAIT_MS`. */
    private readonly commitWindowMs = 0,
    /** The bytes of a reject's payload the log keeps (`buffer.reject_payload_bytes`). */
    private readonly rejectPayloadBytes = Number.POSITIVE_INFINITY,
  ) {
    worker.on('message', (m: FromBufferThread) => this.receive(m));
    worker.on('error', (err) =>
      this.fail(
        new EdgeError(EdgeErrorCode.BUFFER_THREAD, `the buffer thread failed: ${err.message}`, true, {
          cause: err,
        }),
      ),
    );
    worker.on('messageerror', (err) =>
      this.fail(
        new EdgeError(
          EdgeErrorCode.BUFFER_THREAD,
          `a buffer thread message was unreadable: ${err.message}`,
          true,
        ),
      ),
    );
    worker.on('exit', (code) => {
      if (this.closing) {
        // Stopped at close (the grace ran out) or ended before saying it was done: appends not yet
        // answered were not acknowledged to their sources, which send them again.
        if (this.closedByThread !== undefined) this.abandon(code);
        return;
      }
      this.fail(
        new EdgeError(
          EdgeErrorCode.BUFFER_THREAD,
          `the buffer thread ended unexpectedly (code ${code})`,
          true,
        ),
      );
    });
  }

  append(observations: Observation[]): Promise<void> {
    return this.enqueue(observations, undefined, undefined, false).then(() => undefined);
  }

  appendOrRefuse(observations: Observation[]): Promise<void> {
    return this.enqueue(observations, undefined, undefined, true).then(() => undefined);
  }

  appendOnce(
    observations: Observation[],
    delivery?: MqttDelivery,
    retained?: RetainedState,
  ): Promise<DeliveryOutcome> {
    return this.enqueue(observations, delivery, retained, false);
  }

  private enqueue(
    observations: Observation[],
    delivery: MqttDelivery | undefined,
    retained: RetainedState | undefined,
    noWait: boolean,
  ): Promise<DeliveryOutcome> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    if (observations.length === 0) return Promise.resolve('stored');
    // Serialised here, on the thread that made them: the buffer thread stores the texts as they come.
    const rows = outgoingRows(observations, Date.now(), monotonicMs());
    const id = this.nextId++;
    this.outgoing.push({ id, rows, delivery, retained, noWait });
    this.schedule();
    return new Promise<DeliveryOutcome>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: never) => void, reject });
    });
  }

  recordReject(entry: RejectEntry): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    const id = this.nextId++;
    // Only the bytes the log keeps cross to the thread, as a copy of their own (`Buffer#slice` would
    // be a view of a socket buffer, cloned whole): a sensor sending large garbage fast would otherwise
    // have every payload cloned into the thread's heap, hundreds of MB a second, beyond the unit's
    // MemoryMax.
    const payload = new Uint8Array(entry.payload.subarray(0, this.rejectPayloadBytes));
    const payloadLength = entry.payloadLength ?? entry.payload.length;
    this.outgoingRejects.push({ id, entry: { ...entry, payload, payloadLength } });
    this.schedule();
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: never) => void, reject });
    });
  }

  async listRejects(limit: number): Promise<KeptReject[]> {
    const kept = (await this.call({ op: 'listRejects', limit })) as KeptReject[];
    // Buffers arrive as plain Uint8Arrays.
    return kept.map((r) => ({
      ...r,
      payload: Buffer.from(r.payload.buffer, r.payload.byteOffset, r.payload.length),
    }));
  }

  async restampUnsynced(nowMs?: number): Promise<number> {
    return (await this.call({ op: 'restampUnsynced', ...(nowMs !== undefined ? { nowMs } : {}) })) as number;
  }

  get duplicateDeliveries(): number {
    return this.last.duplicates;
  }

  get retainedRepeatDeliveries(): number {
    return this.last.retainedRepeats;
  }

  stats(): OutboxStats {
    if (this.failed) throw this.failed;
    return this.last.stats;
  }

  /** The buffer thread's V8 heap as of its latest report (bytes). */
  threadHeap(): { used: number; total: number } | undefined {
    return this.last.heap;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.failed) return;
      this.send();
      const closed = new Promise<void>((resolve) => {
        this.closedByThread = resolve;
      });
      const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
      this.post({ t: 'close' });
      // Once it says so, the file is closed and its connection drained: nothing is left to lose.
      const grace = setTimeout(() => {
        this.graceRanOut = true;
        void this.worker.terminate();
      }, EXIT_GRACE_MS);
      await Promise.race([closed, exited]);
      clearTimeout(grace);
      await this.worker.terminate();
    })();
    return this.closing;
  }

  private refusal(): EdgeError | undefined {
    if (this.failed) return this.failed;
    if (this.closing) return new EdgeError(EdgeErrorCode.BUFFER_CLOSED, 'buffer is closed', true);
    return undefined;
  }

  private call(call: BufferCall): Promise<KeptReject[] | number | undefined> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    const id = this.nextId++;
    this.post({ t: 'call', id, call });
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: never) => void, reject });
    });
  }

  /** See `HANDOFF_MAX_WAIT_MS`. */
  private schedule(): void {
    if (this.scheduled) return;
    const wait = this.lastSendMs + this.commitWindowMs - performance.now();
    if (this.awaitingCommit) {
      // The commit's report sends it (see `receive`); this only bounds the wait for a report.
      const bound = Math.max(wait, HANDOFF_MAX_WAIT_MS);
      this.scheduled = { timer: setTimeout(() => this.send(), bound) };
      return;
    }
    // When idle, at the end of this turn of the event loop (with whatever else it brings).
    this.scheduled =
      wait > 0
        ? { timer: setTimeout(() => this.send(), wait) }
        : { immediate: setImmediate(() => this.send()) };
  }

  private unschedule(): void {
    if (!this.scheduled) return;
    if ('timer' in this.scheduled) clearTimeout(this.scheduled.timer);
    else clearImmediate(this.scheduled.immediate);
    this.scheduled = undefined;
  }

  private send(): void {
    this.unschedule();
    if (this.failed || (this.outgoing.length === 0 && this.outgoingRejects.length === 0)) return;
    this.awaitingCommit = true;
    this.lastSendMs = performance.now();
    const { group, transfer } = packAppends(this.outgoing, this.outgoingRejects);
    this.outgoing = [];
    this.outgoingRejects = [];
    this.post({ t: 'appends', group }, transfer);
  }

  private post(m: ToBufferThread, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(m, transfer);
  }

  private receive(m: FromBufferThread): void {
    switch (m.t) {
      case 'settled': {
        this.last = m.report;
        // A commit: what gathered meanwhile goes over, once the window since the last group is over.
        this.awaitingCommit = false;
        if (this.scheduled) {
          this.unschedule();
          this.schedule();
        }
        for (let i = 0; i < m.ids.length; i++) {
          const id = m.ids[i] as number;
          const w = this.waiting.get(id);
          this.waiting.delete(id);
          w?.resolve(OUTCOME_CODES[m.outcomes[i] as number] as never);
        }
        for (const e of m.errors) {
          const w = this.waiting.get(e.id);
          this.waiting.delete(e.id);
          w?.reject(asError(e));
        }
        return;
      }
      case 'report':
        this.last = m.report;
        return;
      case 'reply': {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.error) w?.reject(asError(m.error));
        else w?.resolve(m.value as never);
        return;
      }
      case 'outbox':
      case 'uplink':
        dispatchEvent(this.handlers, m);
        return;
      case 'closed':
        this.last = m.report;
        this.closedByThread?.();
        this.closedByThread = undefined;
        return;
      case 'ready':
        return;
    }
  }

  /** The thread ended during close without saying it was done: see `onCloseIncomplete`. */
  private abandon(code: number): void {
    this.closedByThread = undefined;
    const detail = this.graceRanOut
      ? `the buffer thread did not finish closing within ${EXIT_GRACE_MS} ms and was stopped`
      : `the buffer thread ended while closing (code ${code})`;
    const err = new EdgeError(EdgeErrorCode.BUFFER_CLOSED, detail, true);
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    this.handlers.onCloseIncomplete?.(detail);
  }

  /** The thread is gone: nothing waiting on it will be answered, and the agent must stop. */
  private fail(err: EdgeError): void {
    if (this.failed) return;
    this.failed = err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
    this.outgoing = [];
    this.outgoingRejects = [];
    this.handlers.onFatal(err);
  }
}
