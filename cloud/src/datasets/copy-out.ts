import type { Readable } from 'node:stream';

/**
 * `COPY ... TO STDOUT` on a pg client, its rows handed over where they lie in the socket's chunks.
 *
 * A general COPY stream (pg-copy-streams) copies every CopyData message out of the socket's chunks
 * into a buffer of its own and then into one per chunk: a million rows cost a million small buffers
 * and most of the bytes copied twice. The server sends one CopyData message per row (the protocol
 * says so for COPY TO: "messages sent from the backend will always correspond to single data rows";
 * a binary COPY's header comes with the first row, its trailer alone). So the messages are parsed
 * here straight from the chunks and each row is handed over as a range of the chunk it arrived in;
 * only a row split between two chunks is copied, into a buffer of its exact size.
 *
 * Used as a pg "submittable" (`client.query(new CopyOut(sql, onRow))`), like pg-copy-streams: it
 * takes the connection's socket for the COPY and gives it back, with the bytes after CopyDone (or
 * from an ErrorResponse on), for pg to read the command's end or its error.
 */
export type RowSink = (buf: Buffer, view: DataView, start: number, end: number) => void;

/** The parts of pg's Connection this uses. */
interface PgConnection {
  stream: Readable;
  query(text: string): void;
}

const COPY_DATA = 0x64; // 'd'
const COPY_DONE = 0x63; // 'c'
const ERROR_RESPONSE = 0x45; // 'E'

export class CopyOut {
  readonly done: Promise<number>;
  private resolve!: (rows: number) => void;
  private reject!: (err: Error) => void;
  private connection: PgConnection | undefined;
  private pgData: ((chunk: Buffer) => void) | undefined;
  private detached = false;
  private failed: Error | undefined;
  /** A message header split between chunks (code and length: 5 bytes). */
  private readonly head = Buffer.alloc(5);
  private headBytes = 0;
  /** The message being read: its code, and the bytes of its body still to come. */
  private code = 0;
  private left = 0;
  /** A CopyData body split between chunks, gathered here. */
  private carry: Buffer | undefined;
  private carried = 0;
  rows = 0;

  constructor(
    readonly text: string,
    private readonly onRow: RowSink,
  ) {
    this.done = new Promise<number>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // The caller awaits `done`; a failure before it does must not count as unhandled.
    this.done.catch(() => undefined);
  }

  private readonly onReadable = () => this.forward();

  /** Called by pg when the query is sent. */
  submit(connection: PgConnection): void {
    this.connection = connection;
    const stream = connection.stream;
    const listeners = stream.listeners('data') as ((chunk: Buffer) => void)[];
    if (listeners.length !== 1) throw new Error('COPY: the connection has no single data listener');
    this.pgData = listeners[0];
    stream.removeListener('data', this.pgData as (chunk: Buffer) => void);
    stream.pause();
    stream.on('readable', this.onReadable);
    connection.query(this.text);
  }

  private forward(): void {
    const stream = this.connection?.stream;
    if (!stream) return;
    while (!this.detached) {
      const chunk = stream.read() as Buffer | null;
      if (chunk === null) return;
      this.parse(chunk);
    }
  }

  private parse(chunk: Buffer): void {
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = chunk.length;
    let p = 0;
    while (p < n) {
      if (this.left === 0 && this.code === 0) {
        // A message header: code and length (which counts itself).
        if (this.headBytes > 0 || p + 5 > n) {
          const take = Math.min(5 - this.headBytes, n - p);
          chunk.copy(this.head, this.headBytes, p, p + take);
          this.headBytes += take;
          p += take;
          if (this.headBytes < 5) return;
          this.headBytes = 0;
          this.code = this.head[0] as number;
          this.left = this.head.readInt32BE(1) - 4;
        } else {
          this.code = chunk[p] as number;
          this.left = view.getInt32(p + 1) - 4;
          p += 5;
        }
        if (this.code === ERROR_RESPONSE) {
          // pg reads the error (and calls handleError) from the whole message.
          const header = Buffer.alloc(5);
          header[0] = ERROR_RESPONSE;
          header.writeInt32BE(this.left + 4, 1);
          this.detach(Buffer.concat([header, chunk.subarray(p)]));
          return;
        }
        if (this.code === COPY_DATA && p + this.left > n) {
          this.carry = Buffer.allocUnsafe(this.left);
          this.carried = 0;
        }
      }
      if (this.code === COPY_DATA && !this.carry) {
        // The whole row is in this chunk: handed over in place.
        const end = p + this.left;
        this.row(chunk, view, p, end);
        p = end;
        this.left = 0;
      } else {
        const take = Math.min(this.left, n - p);
        if (this.carry) {
          chunk.copy(this.carry, this.carried, p, p + take);
          this.carried += take;
        }
        p += take;
        this.left -= take;
        if (this.left > 0) return;
        if (this.carry) {
          const c = this.carry;
          this.carry = undefined;
          this.row(c, new DataView(c.buffer, c.byteOffset, c.byteLength), 0, c.length);
        }
      }
      const code = this.code;
      this.code = 0;
      if (code === COPY_DONE) {
        this.detach(chunk.subarray(p));
        return;
      }
    }
  }

  private row(buf: Buffer, view: DataView, start: number, end: number): void {
    // After a row the sink refused, the rest is only read to the stream's end (then refused).
    if (this.failed) return;
    try {
      this.onRow(buf, view, start, end);
      this.rows++;
    } catch (err) {
      this.failed = err as Error;
    }
  }

  /** Gives the socket back to pg, with the bytes it has not read yet. */
  private detach(rest: Buffer): void {
    if (this.detached) return;
    this.detached = true;
    const stream = this.connection?.stream;
    const pgData = this.pgData;
    if (!stream || !pgData) return;
    stream.removeListener('readable', this.onReadable);
    stream.on('data', pgData);
    pgData(rest);
    // As pg-copy-streams does: pg's handler may pause the stream meanwhile; resume once it is done.
    process.nextTick(() => stream.resume());
  }

  // pg's calls once the socket is back in its hands.
  handleCommandComplete(): void {}

  handleReadyForQuery(): void {
    if (this.failed) this.reject(this.failed);
    else this.resolve(this.rows);
  }

  handleError(err: Error): void {
    // The socket is pg's again whatever happened (a dead socket, an error from the server).
    if (!this.detached && this.connection) {
      this.detached = true;
      const stream = this.connection.stream;
      stream.removeListener('readable', this.onReadable);
      if (this.pgData) stream.on('data', this.pgData);
      process.nextTick(() => stream.resume());
    }
    this.reject(this.failed ?? err);
  }
}
