import { ISS_FIELDS, type IssField } from '../iss/isslive-schema.js';
import { encodeUpdate, type FieldValue, tlcpLine, updateLine } from './tlcp-encoding.js';

/**
 * One TLCP session of the replay server: its subscriptions, the delta baseline per
 * (subscription, item), and the log of data notifications that session recovery replays from.
 * No I/O here: the server binds a {@link TlcpStream} to it and feeds it item updates.
 */

/** Where a session's notifications are written: a WebSocket or an HTTP streaming response. */
export interface TlcpStream {
  /** False while nothing may be written (server silent, socket closing): data stays in the log. */
  writable(): boolean;
  /** Writes notification lines (the stream adds CRLFs). */
  send(lines: readonly string[]): void;
  /** Ends the stream because its session moved to another one. */
  close(): void;
}

/** A session-level change of an item: the full values, in {@link ISS_FIELDS} order. */
export interface ItemChange {
  item: string;
  values: readonly FieldValue[];
}

interface Subscription {
  id: number;
  items: readonly string[];
  /** Positions in ISS_FIELDS of the subscribed fields, in the order the client asked for. */
  fieldIdx: readonly number[];
  /** 1-based positions of each item name in the group (a name may appear more than once). */
  positions: ReadonlyMap<string, readonly number[]>;
  /** Last values sent per item position: the delta baseline. */
  lastSent: Map<number, FieldValue[]>;
}

/** Data notifications are the ones TLCP counts for `LS_recovery_from` / `PROG` (tlcp.md §3). */
const DEFAULT_LOG_LIMIT = 50_000;

export class TlcpSession {
  readonly id: string;
  readonly createdMs: number;
  /** Since when no stream is bound (undefined while bound): drives session expiry. */
  unboundSinceMs: number | undefined;
  stream: TlcpStream | undefined;
  private readonly subs = new Map<number, Subscription>();
  private log: string[] = [];
  /** Absolute index of log[0]; earlier notifications were trimmed and cannot be recovered. */
  private logStart = 0;
  /** Absolute index of the first notification not yet written to a stream. */
  private delivered = 0;

  constructor(
    id: string,
    nowMs: number,
    private readonly logLimit = DEFAULT_LOG_LIMIT,
  ) {
    this.id = id;
    this.createdMs = nowMs;
    this.unboundSinceMs = nowMs;
  }

  /** Data notifications produced so far: the client's `LS_recovery_from` counts the same. */
  get progress(): number {
    return this.logStart + this.log.length;
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  /**
   * Binds a stream. With `recoveryFrom`, the client says how many data notifications it has; the
   * stream then continues from there (`PROG` first, then what it missed). Returns the lines to
   * send after the CONOK head, or undefined when that point is no longer in the log.
   */
  bind(stream: TlcpStream, recoveryFrom?: number): string[] | undefined {
    const head: string[] = [];
    if (recoveryFrom !== undefined) {
      if (recoveryFrom < this.logStart || recoveryFrom > this.progress) return undefined;
      this.delivered = recoveryFrom;
      head.push(tlcpLine('PROG', recoveryFrom));
    }
    if (this.stream !== undefined && this.stream !== stream) this.stream.close();
    this.stream = stream;
    this.unboundSinceMs = undefined;
    return [...head, ...this.takeBacklog()];
  }

  /** Lines not yet delivered; marks them delivered. */
  takeBacklog(): string[] {
    const pending = this.log.slice(this.delivered - this.logStart);
    this.delivered = this.progress;
    return pending;
  }

  unbind(stream: TlcpStream, nowMs: number): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.unboundSinceMs = nowMs;
  }

  /** Writes anything the bound stream has not had yet (e.g. after the server stops being silent). */
  flush(): void {
    if (this.stream === undefined || !this.stream.writable()) return;
    const pending = this.takeBacklog();
    if (pending.length > 0) this.stream.send(pending);
  }

  private pushData(lines: readonly string[]): void {
    if (lines.length === 0) return;
    this.log.push(...lines);
    if (this.log.length > this.logLimit) {
      const cut = this.log.length - this.logLimit;
      this.log = this.log.slice(cut);
      this.logStart += cut;
      this.delivered = Math.max(this.delivered, this.logStart);
    }
    this.flush();
  }

  /** Handles one control request; returns its direct replies. `state` gives an item's current values. */
  control(params: ReadonlyMap<string, string>, state: (item: string) => readonly FieldValue[] | undefined) {
    const reqId = params.get('LS_reqId') ?? '';
    const op = params.get('LS_op');
    const ok = [tlcpLine('REQOK', reqId)];
    const refuse = (code: number, message: string) => ({
      replies: [tlcpLine('REQERR', reqId, code, message)],
    });
    switch (op) {
      case 'add': {
        const error = this.add(params, state);
        return error === undefined ? { replies: ok } : refuse(error.code, error.message);
      }
      case 'delete': {
        const subId = Number(params.get('LS_subId'));
        if (!this.subs.delete(subId)) return refuse(19, `Subscription ${params.get('LS_subId')} not found`);
        this.pushData([tlcpLine('UNSUB', subId)]);
        return { replies: ok };
      }
      case 'destroy':
        return { replies: ok, destroy: true };
      // Frequency, bandwidth and transport changes do not alter what this server sends.
      case 'reconf':
      case 'constrain':
      case 'force_rebind':
        return { replies: ok };
      default:
        return refuse(32, `Unsupported operation ${op ?? '(none)'}`);
    }
  }

  private add(
    params: ReadonlyMap<string, string>,
    state: (item: string) => readonly FieldValue[] | undefined,
  ): { code: number; message: string } | undefined {
    const subId = Number(params.get('LS_subId'));
    if (!Number.isInteger(subId) || subId <= 0) return { code: 21, message: 'Missing or bad LS_subId' };
    const adapter = params.get('LS_data_adapter');
    if (adapter !== undefined && adapter !== 'DEFAULT') {
      return { code: 17, message: `Data Adapter ${adapter} not found (ISSLIVE serves DEFAULT)` };
    }
    const mode = params.get('LS_mode');
    if (mode !== 'MERGE')
      return { code: 24, message: `Mode ${mode ?? '(none)'} not allowed: ISSLIVE is MERGE` };
    const items = (params.get('LS_group') ?? '').split(' ').filter((s) => s !== '');
    if (items.length === 0) return { code: 21, message: 'Empty item group' };
    const fields = (params.get('LS_schema') ?? '').split(' ').filter((s) => s !== '');
    const fieldIdx = fields.map((f) => ISS_FIELDS.indexOf(f as IssField));
    if (fields.length === 0 || fieldIdx.includes(-1)) {
      return { code: 23, message: `Bad schema "${fields.join(' ')}"; fields are ${ISS_FIELDS.join(' ')}` };
    }
    const positions = new Map<string, number[]>();
    items.forEach((item, i) => {
      positions.set(item, [...(positions.get(item) ?? []), i + 1]);
    });
    // A repeated subId replaces the old subscription (the client reuses ids only across sessions).
    const sub: Subscription = { id: subId, items, fieldIdx, positions, lastSent: new Map() };
    this.subs.set(subId, sub);
    const lines = [tlcpLine('SUBOK', subId, items.length, fields.length)];
    // MERGE snapshot: the current values of every item that has any (LS_snapshot true or a count).
    if (params.get('LS_snapshot') !== 'false' && params.get('LS_snapshot') !== undefined) {
      items.forEach((item, i) => {
        const values = state(item);
        if (values !== undefined) lines.push(this.update(sub, i + 1, values));
      });
    }
    this.pushData(lines);
    return undefined;
  }

  private update(sub: Subscription, position: number, values: readonly FieldValue[]): string {
    const projected = sub.fieldIdx.map((i) => values[i] ?? null);
    const encoded = encodeUpdate(sub.lastSent.get(position), projected);
    sub.lastSent.set(position, projected);
    return updateLine(sub.id, position, encoded);
  }

  /** Fans item changes out to the subscriptions that hold those items. */
  publish(changes: readonly ItemChange[]): void {
    const lines: string[] = [];
    for (const sub of this.subs.values()) {
      for (const change of changes) {
        for (const position of sub.positions.get(change.item) ?? []) {
          lines.push(this.update(sub, position, change.values));
        }
      }
    }
    this.pushData(lines);
  }
}
