import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

/** MQTT 3.1.1 packets written byte by byte: what a broken or hostile client sends, unchecked. */

/** The fixed header: first byte and the remaining length as a variable byte integer. */
export function fixedHeader(first: number, length: number): Buffer {
  const out = [first];
  let n = length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

const str = (s: string | Buffer) => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
};

export function connectPacket(clientId: string, username?: string, password?: string): Buffer {
  const flags = 0x02 | (username !== undefined ? 0x80 : 0) | (password !== undefined ? 0x40 : 0);
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([4, flags, 0, 60]),
    str(clientId),
    ...(username !== undefined ? [str(username)] : []),
    ...(password !== undefined ? [str(password)] : []),
  ]);
  return Buffer.concat([fixedHeader(0x10, body.length), body]);
}

/** A QoS 1 PUBLISH; the topic as raw bytes, so it can be anything. */
export function publishPacket(topic: string | Buffer, payload: Buffer, packetId = 1): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(packetId);
  const body = Buffer.concat([str(topic), id, payload]);
  return Buffer.concat([fixedHeader(0x32, body.length), body]);
}

export interface RawClient {
  readonly socket: Socket;
  /** Every byte the broker sent. */
  received(): Buffer;
  /** Resolves when the connection is closed, or with false after `ms`. */
  closed(ms: number): Promise<boolean>;
}

export async function rawClient(port: number, host = '127.0.0.1'): Promise<RawClient> {
  const socket = connect(port, host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => {});
  const chunks: Buffer[] = [];
  socket.on('data', (b: Buffer) => chunks.push(b));
  let isClosed = false;
  const closedP = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  void closedP.then(() => {
    isClosed = true;
  });
  return {
    socket,
    received: () => Buffer.concat(chunks),
    async closed(ms) {
      if (isClosed) return true;
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        closedP.then(() => true),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), ms);
        }),
      ]);
      clearTimeout(timer);
      return result;
    },
  };
}

/** A client logged in: CONNECT written and a CONNACK with return code 0 read. */
export async function rawLogin(
  port: number,
  clientId: string,
  user: string,
  pass: string,
): Promise<RawClient> {
  const c = await rawClient(port);
  c.socket.write(connectPacket(clientId, user, pass));
  for (let i = 0; i < 200 && c.received().length < 4; i++) await new Promise((r) => setTimeout(r, 25));
  const connack = c.received();
  if (connack[0] !== 0x20 || connack[3] !== 0) throw new Error(`login refused: ${connack.toString('hex')}`);
  return c;
}

/**
 * Writes `header` and then up to `bodyBytes` of zeros in 64 KiB chunks, as fast as the socket takes
 * them, stopping when the broker closes the connection. Resolves with the bytes written after the header.
 */
export async function streamAnnounced(c: RawClient, header: Buffer, bodyBytes: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024);
  let sent = 0;
  let closed = false;
  c.socket.once('close', () => {
    closed = true;
  });
  if (!c.socket.write(header)) await new Promise((r) => c.socket.once('drain', r));
  while (!closed && !c.socket.destroyed && sent < bodyBytes) {
    const ok = c.socket.write(chunk);
    sent += chunk.length;
    if (!ok) {
      await new Promise<void>((resolve) => {
        const done = () => {
          c.socket.off('drain', done);
          c.socket.off('close', done);
          resolve();
        };
        c.socket.once('drain', done);
        c.socket.once('close', done);
      });
    }
  }
  return sent;
}

/** Resident memory of a process in bytes (VmRSS), and its peak (VmHWM). */
export function processMemory(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}
