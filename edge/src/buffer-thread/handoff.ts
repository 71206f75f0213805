import type { Observation } from '@fieldbeam/protocol';
import { unsyncedMonoMs } from '../outbox/clock-restamp.js';
import type { DeliveryOutcome, MqttDelivery, RejectEntry, RetainedState } from '../outbox/outbox.js';
import { ROW_OVERHEAD } from '../outbox/schema.js';
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

/** A row as the main thread queues it: its size in bytes is counted when it is packed. */
export type OutgoingRow = Omit<BufferRow, 'bytes'>;

/** An append as the main thread queues it (see `outgoingRows`). */
export type OutgoingAppend = Omit<AppendRequest, 'rows'> & { rows: readonly OutgoingRow[] };

/**
 * The rows of one append, all received at `receivedMs` (`monoMs` on the monotonic clock): each
 * observation's JSON, made once here on the thread that built it. Their UTF-8 size is not measured
 * here: `packAppends` learns it from the bytes it writes.
 */
export function outgoingRows(
  observations: readonly Observation[],
  receivedMs: number,
  monoMs: number,
): OutgoingRow[] {
  const rows: OutgoingRow[] = new Array(observations.length);
  for (let i = 0; i < observations.length; i++) {
    const o = observations[i] as Observation;
    rows[i] = { obs: JSON.stringify(o), receivedMs, monoMs: unsyncedMonoMs(o, monoMs) };
  }
  return rows;
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

const decoder = new TextDecoder();

/**
 * Where rows are written as UTF-8 while a group is packed: kept between groups (and grown), so a
 * group costs one exact-size copy for the transfer, not a joined string and its encoding. A scratch
 * grown past `SCRATCH_KEEP` by a burst is let go after use.
 */
let scratch = Buffer.allocUnsafeSlow(64 * 1024);
const SCRATCH_KEEP = 4 * 1024 * 1024;

/** `scratch` with room for `need` more bytes after `used`, what was written kept. */
function room(used: number, need: number): Buffer {
  if (scratch.length - used >= need) return scratch;
  const grown = Buffer.allocUnsafeSlow(Math.max(scratch.length * 2, used + need));
  scratch.copy(grown, 0, 0, used);
  scratch = grown;
  return grown;
}

/** Packs appends (and rejects) into one group; `transfer` lists the buffers to move with it. */
export function packAppends(
  appends: readonly OutgoingAppend[],
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
  let n = 0;
  let h = 0;
  let used = 0;
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
      const text = row.obs;
      // At most 3 bytes per UTF-16 unit. The rows are cut apart again by their lengths in characters,
      // which a UTF-8 round trip keeps (JSON.stringify escapes lone surrogates, so every text is well
      // formed and its bytes are those of the same text joined to the others).
      const into = room(used, text.length * 3);
      const written = into.write(text, used);
      used += written;
      nums[n++] = text.length;
      nums[n++] = written + ROW_OVERHEAD;
      nums[n++] = row.receivedMs;
      nums[n++] = row.monoMs ?? Number.NaN;
    }
  }
  // A copy of exactly the bytes written, in a buffer of its own that can be transferred.
  const json = new Uint8Array(scratch.buffer, scratch.byteOffset, used).slice();
  if (scratch.length > SCRATCH_KEEP) scratch = Buffer.allocUnsafeSlow(64 * 1024);
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
