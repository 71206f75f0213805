import type { ServerResponse } from 'node:http';

/** Bounds of the live updates (cloud/README.md, "Operator console"). */
export interface SseLimits {
  /** Clients connected at once; one more is refused (the caller answers 503). */
  maxClients: number;
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

export type DropReason = 'slow' | 'full';

interface Entry<S> extends SseClient<S> {
  sink: SseSink;
}

/**
 * The console's server-sent event streams. Every write goes through `send`, which drops a client
 * whose unsent bytes are over `maxQueuedBytes` (a hung or slow browser) rather than buffering for it:
 * whatever the clients do, the hub holds at most `maxClients × (maxQueuedBytes + one event)` bytes.
 */
export class SseHub<S = undefined> {
  private readonly clients = new Map<number, Entry<S>>();
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
   * Takes a response whose headers are not yet sent; undefined when the hub is full or closed (the
   * caller answers 503 and the response is not touched). Writes the event-stream headers.
   */
  add(sink: SseSink & Pick<ServerResponse, 'writeHead'>, subscription: S): SseClient<S> | undefined {
    if (this.closed || this.clients.size >= this.limits.maxClients) {
      this.onChange({ clients: this.clients.size, dropped: 'full' });
      return undefined;
    }
    const entry: Entry<S> = { id: this.nextId++, subscription, sink };
    this.clients.set(entry.id, entry);
    sink.once('close', () => {
      if (this.clients.delete(entry.id)) this.onChange({ clients: this.clients.size });
    });
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
    if (this.clients.delete(entry.id))
      this.onChange({ clients: this.clients.size, ...(dropped ? { dropped } : {}) });
  }
}

/** One event as the text/event-stream format wants it (JSON has no raw newlines to split). */
export function frame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
