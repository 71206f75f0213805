import type { DeliveryOutcome, MqttDelivery, RejectEntry, RetainedState } from '../outbox/outbox.js';
import type { BufferRow } from '../outbox/sqlite-buffer.js';

/** One append as the main thread hands it to the buffer thread: rows made by `toRows`. */
export interface AppendRequest {
  /** Numbers the append's settlement in the reply (`Settled`). */
  id: number;
  rows: BufferRow[];
  delivery?: MqttDelivery | undefined;
  retained?: RetainedState | undefined;
  /** `appendOrRefuse`: refused with BUFFER_FULL rather than kept waiting for room. */
  noWait: boolean;
}

/**
 * The appends of one turn of the main thread's event loop (a burst of MQTT messages, the posts that
 * arrived together), packed into a few flat arrays so that one `postMessage` carries them with their
 * buffers transferred, not cloned: the stored JSON of every row in one UTF-8 array, the numbers in
 * one Float64Array, the strings of deliveries in one small array. Rejects travel beside them.
 */
export interface AppendGroup {
  json: Uint8Array;
  nums: Float64Array;
  strs: string[];
  hashes: Uint8Array;
  rejects: { id: number; entry: RejectEntry }[];
}

/** Numbers per append before its rows: id, rows, flags, packet id, delivery hash length, retained hash length. */
const HEAD = 6;
/** Numbers per row: characters of its JSON, bytes, receipt time, monotonic time (NaN for none). */
const ROW = 4;
const NO_WAIT = 1;
const DELIVERY = 2;
const MAY_BE_RESEND = 4;
const RETAINED = 8;
const REPLAYED = 16;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Packs appends (and rejects) into one group; `transfer` lists the buffers to move with it. */
export function packAppends(
  appends: readonly AppendRequest[],
  rejects: { id: number; entry: RejectEntry }[] = [],
): { group: AppendGroup; transfer: ArrayBuffer[] } {
  let rowCount = 0;
  let hashBytes = 0;
  for (const a of appends) {
    rowCount += a.rows.length;
    hashBytes += (a.delivery?.hash.length ?? 0) + (a.retained?.payloadHash.length ?? 0);
  }
  const nums = new Float64Array(appends.length * HEAD + rowCount * ROW);
  const hashes = new Uint8Array(hashBytes);
  const strs: string[] = [];
  const texts: string[] = new Array(rowCount);
  let n = 0;
  let h = 0;
  let t = 0;
  for (const a of appends) {
    const d = a.delivery;
    const r = a.retained;
    nums[n++] = a.id;
    nums[n++] = a.rows.length;
    nums[n++] =
      (a.noWait ? NO_WAIT : 0) |
      (d ? DELIVERY : 0) |
      (d?.mayBeResend ? MAY_BE_RESEND : 0) |
      (r ? RETAINED : 0) |
      (r?.replayed ? REPLAYED : 0);
    nums[n++] = d?.packetId ?? 0;
    nums[n++] = d?.hash.length ?? 0;
    nums[n++] = r?.payloadHash.length ?? 0;
    if (d) {
      strs.push(d.clientId);
      hashes.set(d.hash, h);
      h += d.hash.length;
    }
    if (r) {
      strs.push(r.topic);
      hashes.set(r.payloadHash, h);
      h += r.payloadHash.length;
    }
    for (const row of a.rows) {
      texts[t++] = row.obs;
      nums[n++] = row.obs.length;
      nums[n++] = row.bytes;
      nums[n++] = row.receivedMs;
      nums[n++] = row.monoMs ?? Number.NaN;
    }
  }
  // One string, one encoding pass: the rows are cut apart again by their lengths in characters,
  // which a UTF-8 round trip keeps (JSON.stringify escapes lone surrogates, so every text is well formed).
  const json = encoder.encode(texts.join(''));
  return {
    group: { json, nums, strs, hashes, rejects },
    transfer: [json.buffer as ArrayBuffer, nums.buffer as ArrayBuffer, hashes.buffer as ArrayBuffer],
  };
}

/** The appends of a group as they were packed. */
export function unpackAppends(group: AppendGroup): AppendRequest[] {
  const { nums, strs, hashes } = group;
  const text = decoder.decode(group.json);
  const out: AppendRequest[] = [];
  let n = 0;
  let h = 0;
  let s = 0;
  let c = 0;
  while (n < nums.length) {
    const id = nums[n++] as number;
    const count = nums[n++] as number;
    const flags = nums[n++] as number;
    const packetId = nums[n++] as number;
    const deliveryHashLen = nums[n++] as number;
    const retainedHashLen = nums[n++] as number;
    const a: AppendRequest = { id, rows: new Array(count), noWait: (flags & NO_WAIT) !== 0 };
    if (flags & DELIVERY) {
      a.delivery = {
        clientId: strs[s++] as string,
        packetId,
        hash: hashes.subarray(h, h + deliveryHashLen),
        mayBeResend: (flags & MAY_BE_RESEND) !== 0,
      };
      h += deliveryHashLen;
    }
    if (flags & RETAINED) {
      a.retained = {
        topic: strs[s++] as string,
        payloadHash: hashes.subarray(h, h + retainedHashLen),
        replayed: (flags & REPLAYED) !== 0,
      };
      h += retainedHashLen;
    }
    for (let i = 0; i < count; i++) {
      const chars = nums[n++] as number;
      const bytes = nums[n++] as number;
      const receivedMs = nums[n++] as number;
      const mono = nums[n++] as number;
      a.rows[i] = {
        obs: text.slice(c, c + chars),
        bytes,
        receivedMs,
        monoMs: Number.isNaN(mono) ? null : mono,
      };
      c += chars;
    }
    out.push(a);
  }
  return out;
}

/** An append or reject that failed, as the buffer thread reports it. */
export interface SettledError {
  id: number;
  code: string | undefined;
  message: string;
  retryable: boolean;
}

/** Outcomes in the reply, one byte each. */
export const OUTCOME_CODES: readonly DeliveryOutcome[] = ['stored', 'duplicate', 'retained_repeat'];
