import type { ServerResponse } from 'node:http';

/** Bounds of the live updates (cloud/README.md, "Operator console"). */
export interface SseLimits {
  /** Clients connected at once; one more is refused (the caller answers 503). */
  maxClients: number;
  /**
   * Clients of one address (`SseOrigin.address`) at once, so that one client cannot take every slot;
   * admins are not counted against it.
   */
  maxPerAddress: number;
  /**
   * Bytes a client may leave unsent (the response's buffer, which grows when the browser does not
   * read); above this it is dropped instead of buffered. A browser's EventSource reconnects by itself.
   */
  maxQueuedBytes: number;
  /** A comment line this often keeps proxies and the idle timeout from closing a quiet stream. */
  heartbeatMs: number;
}

export const DEFAULT_SSE_LIMITS: Readonly<SseLimits> = Object.freeze({
  maxClients: 50,
  maxPerAddress: 4,
  maxQueuedBytes: 1024 * 1024,
  heartbeatMs: 15_000,
});

/** The part of a response the hub writes to (a ServerResponse in the collector). */
export type SseSink = Pick<ServerResponse, 'write' | 'end' | 'destroy' | 'writableLength' | 'destroyed'> & {
  once(event: 'close', listener: () => void): unknown;
};

export interface SseClient<S> {
  readonly id: number;
  /** What the client asked for when it connected (e.g. the series it plots). */
  readonly subscription: S;
}

/**
 * Why a client was dropped or refused: slow (its buffer), full (maxClients), address (maxPerAddress),
 * evicted (an anonymous client ended to make room for an admin).
 */
export type DropReason = 'slow' | 'full' | 'address' | 'evicted';

/** Who connects: the address it is counted under, and whether it is a logged-in admin. */
export interface SseOrigin {
  /** Undefined: a client on this machine, bounded by maxClients only. */
  address?: string | undefined;
  admin?: boolean;
}

interface Entry<S> extends SseClient<S> {
  sink: SseSink;
  address: string | undefined;
  admin: boolean;
}

/**
 * The console's server-sent event streams. Every write goes through `send`, which drops a client
 * whose unsent bytes are over `maxQueuedBytes` (a hung or slow browser) rather than buffering for it:
 * whatever the clients do, the hub holds at most `maxClients × (maxQueuedBytes + one event)` bytes.
 */
export class SseHub<S = undefined> {
  private readonly clients = new Map<number, Entry<S>>();
  /** Anonymous clients per address (only addresses with one or more). */
  private readonly perAddress = new Map<string, number>();
  private nextId = 1;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly limits: SseLimits = DEFAULT_SSE_LIMITS,
    private readonly onChange: (event: { clients: number; dropped?: DropReason }) => void = () => {},
  ) {
    this.timer = setInterval(() => this.comment('heartbeat'), limits.heartbeatMs);
    this.timer.unref();
  }

  get size(): number {
    return this.clients.size;
  }

  /**
   * Why a client from `from` would be refused now (`full`, `address`), or undefined when it would be
   * taken. An admin is refused only when every slot holds an admin: otherwise an anonymous client
   * makes room for it, so that no number of anonymous streams locks the operator out.
   */
  refusal(from: SseOrigin = {}): 'full' | 'address' | undefined {
    if (this.closed) return 'full';
    if (from.admin)
      return this.clients.size < this.limits.maxClients || this.evictable() ? undefined : 'full';
    if (this.clients.size >= this.limits.maxClients) return 'full';
    if (from.address !== undefined && (this.perAddress.get(from.address) ?? 0) >= this.limits.maxPerAddress)
      return 'address';
    return undefined;
  }

  /**
   * Takes a response whose headers are not yet sent; undefined when `refusal` says no (the caller
   * answers 503 and the response is not touched). Writes the event-stream headers.
   */
  add(
    sink: SseSink & Pick<ServerResponse, 'writeHead'>,
    subscription: S,
    from: SseOrigin = {},
  ): SseClient<S> | undefined {
    const refused = this.refusal(from);
    if (refused) {
      this.onChange({ clients: this.clients.size, dropped: refused });
      return undefined;
    }
    if (this.clients.size >= this.limits.maxClients) {
      const victim = this.evictable() as Entry<S>;
      this.forget(victim, 'evicted');
      victim.sink.end();
    }
    const admin = from.admin === true;
    const entry: Entry<S> = { id: this.nextId++, subscription, sink, address: from.address, admin };
    this.clients.set(entry.id, entry);
    if (!admin && entry.address !== undefined)
      this.perAddress.set(entry.address, (this.perAddress.get(entry.address) ?? 0) + 1);
    sink.once('close', () => this.forget(entry));
    sink.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Proxies (nginx) must pass events as they come, not collect them.
      'x-accel-buffering': 'no',
    });
    // Reconnect after 3 s when the stream ends (EventSource's own retry).
    this.write(entry, 'retry: 3000\n\n');
    this.onChange({ clients: this.clients.size });
    return entry;
  }

  /** Sends one event to one client; false when the client was dropped (or is gone). */
  send(client: SseClient<S>, event: string, data: unknown): boolean {
    const entry = this.clients.get(client.id);
    if (!entry) return false;
    return this.write(entry, frame(event, data));
  }

  /** Sends one event to every client `which` selects (all by default); the frame is built once. */
  broadcast(event: string, data: unknown, which: (c: SseClient<S>) => boolean = () => true): number {
    let text: string | undefined;
    let sent = 0;
    for (const entry of [...this.clients.values()]) {
      if (!which(entry)) continue;
      text ??= frame(event, data);
      if (this.write(entry, text)) sent++;
    }
    return sent;
  }

  /** Every client (for per-subscription events). */
  list(): SseClient<S>[] {
    return [...this.clients.values()];
  }

  /** Ends every stream and refuses new ones (collector shutdown). */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const entry of this.clients.values()) entry.sink.end();
    this.clients.clear();
    this.perAddress.clear();
    this.onChange({ clients: 0 });
  }

  private comment(text: string): void {
    for (const entry of [...this.clients.values()]) this.write(entry, `: ${text}\n\n`);
  }

  /**
   * The only place bytes are handed to a client. The check comes before the write: a client already
   * over its bound gets nothing more and is dropped, so its buffer never exceeds bound + one frame.
   */
  private write(entry: Entry<S>, text: string): boolean {
    const { sink } = entry;
    if (sink.destroyed) {
      this.forget(entry);
      return false;
    }
    if (sink.writableLength > this.limits.maxQueuedBytes) {
      this.forget(entry, 'slow');
      // Destroy, not end: end would wait (and keep the buffer) until the client read it all.
      sink.destroy();
      return false;
    }
    sink.write(text);
    return true;
  }

  private forget(entry: Entry<S>, dropped?: DropReason): void {
    if (!this.clients.delete(entry.id)) return;
    if (!entry.admin && entry.address !== undefined) {
      const left = (this.perAddress.get(entry.address) ?? 1) - 1;
      if (left > 0) this.perAddress.set(entry.address, left);
      else this.perAddress.delete(entry.address);
    }
    this.onChange({ clients: this.clients.size, ...(dropped ? { dropped } : {}) });
  }

  /** The anonymous client to end for an admin: the oldest of the address holding the most streams. */
  private evictable(): Entry<S> | undefined {
    let busiest: string | undefined;
    for (const [address, n] of this.perAddress)
      if (busiest === undefined || n > (this.perAddress.get(busiest) ?? 0)) busiest = address;
    let oldestAnonymous: Entry<S> | undefined;
    for (const entry of this.clients.values()) {
      if (entry.admin) continue;
      if (entry.address === busiest) return entry;
      oldestAnonymous ??= entry;
    }
    return oldestAnonymous;
  }
}

/** One event as the text/event-stream format wants it (JSON has no raw newlines to split). */
export function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
