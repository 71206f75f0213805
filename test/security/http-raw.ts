import { connect } from 'node:net';

/** What came back for bytes written to a raw TCP socket. */
export interface RawAnswer {
  /** Everything the server sent, as latin1 (byte for byte). */
  text: string;
  /** Status of each response found at a response boundary, 1xx interim ones included. */
  statuses: number[];
  /** The first response's status line and headers parse as HTTP/1.1. */
  wellFormed: boolean;
  /** The body of the first response (as far as it came). */
  body: string;
}

const STATUS_LINE = /^HTTP\/1\.1 (\d{3}) [^\r\n]*\r\n/;
const HEADER = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[ \t]?[^\r\n]*\r\n/;

/** Parses the first response's head strictly; `undefined` when it is not HTTP/1.1. */
function head(text: string): { status: number; end: number; chunked: boolean } | undefined {
  const line = STATUS_LINE.exec(text);
  if (!line) return undefined;
  let at = line[0].length;
  let chunked = false;
  for (;;) {
    if (text.startsWith('\r\n', at)) return { status: Number(line[1]), end: at + 2, chunked };
    const h = HEADER.exec(text.slice(at));
    if (!h) return undefined;
    if (/^transfer-encoding:\s*chunked/i.test(h[0])) chunked = true;
    at += h[0].length;
  }
}

/** The data of a chunked body (as far as it came). */
function unchunk(text: string): string {
  let out = '';
  let at = 0;
  for (;;) {
    const eol = text.indexOf('\r\n', at);
    const size = eol === -1 ? Number.NaN : Number.parseInt(text.slice(at, eol), 16);
    if (!(size > 0)) return out;
    out += text.slice(eol + 2, eol + 2 + size);
    at = eol + 2 + size + 2;
  }
}

/**
 * Writes `bytes` to host:port over a plain socket, half-closes (so an incomplete request ends
 * instead of waiting for more), and collects the answer until the server closes or `timeoutMs` passes.
 * JSON bodies escape CR/LF, so a status line found after CRLF is a response boundary.
 */
export function rawRequest(
  host: string,
  port: number,
  bytes: string | Buffer,
  timeoutMs = 10_000,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the answer is the server closing a connection it refused; keep what came.
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const statuses = [...text.matchAll(/(?:^|\r\n)HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
      // Skip interim 1xx responses (e.g. after `Expect: 100-continue`) to the final one.
      let rest = text;
      let first = head(rest);
      while (first && first.status < 200) {
        rest = rest.slice(first.end);
        first = head(rest);
      }
      const body = first ? rest.slice(first.end) : '';
      resolve({
        text,
        statuses,
        wellFormed: first !== undefined,
        body: first?.chunked ? unchunk(body) : body,
      });
    });
    socket.on('connect', () => {
      socket.end(bytes);
    });
  });
}

/** `GET <target>` with a Host header, closing the connection after the answer. */
export const rawGet = (host: string, port: number, target: string, headers = '') =>
  rawRequest(host, port, `GET ${target} HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`);
