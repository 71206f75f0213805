import type { EdgeConfig } from '../config.js';
import type { UplinkEvents } from '../forward/uplink.js';
import type { OutboxEvents } from '../outbox/open-outbox.js';
import type { KeptReject, OutboxStats } from '../outbox/outbox.js';
import type { AppendGroup, SettledError } from './handoff.js';

/** What the buffer thread starts with. */
export interface BufferThreadData {
  config: EdgeConfig;
  capacityBytes: number;
}

/** The buffer's account as the buffer thread reports it to the main thread. */
export interface BufferReport {
  stats: OutboxStats;
  duplicates: number;
  retainedRepeats: number;
  /** The buffer thread's own V8 heap (its isolate's, bytes): prom-client's defaults show only the main thread's. */
  heap?: { used: number; total: number };
}

/** Requests answered by the buffer thread (other than appends). */
export type BufferCall = { op: 'listRejects'; limit: number } | { op: 'restampUnsynced'; nowMs?: number };

export type ToBufferThread =
  | { t: 'appends'; group: AppendGroup }
  | { t: 'call'; id: number; call: BufferCall }
  | { t: 'close' };

type EventOf<T> = {
  [K in keyof T]: { name: K; args: T[K] extends (...a: infer A) => void ? A : never };
}[keyof T];

export type FromBufferThread =
  | { t: 'ready'; bufferId: string; bufferStart: number; report: BufferReport }
  | {
      t: 'settled';
      /** Ids of the appends and rejects settled, with an outcome each (`OUTCOME_CODES`), and the failed ones. */
      ids: Float64Array;
      outcomes: Uint8Array;
      errors: SettledError[];
      report: BufferReport;
    }
  | { t: 'report'; report: BufferReport }
  | { t: 'reply'; id: number; value?: KeptReject[] | number; error?: SettledError }
  | { t: 'outbox'; event: EventOf<OutboxEvents> }
  | { t: 'uplink'; event: EventOf<UplinkEvents> }
  | { t: 'closed'; report: BufferReport };
