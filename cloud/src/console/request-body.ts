import type { IncomingMessage } from 'node:http';
import { HttpError } from '../http-api.js';

/** Bounds of a console request body: small JSON objects only (a login, a sensor). */
export interface BodyLimits {
  maxBytes: number;
  /** The whole body must arrive within this (a client trickling bytes is cut off). */
  timeoutMs: number;
}

export const DEFAULT_BODY_LIMITS: Readonly<BodyLimits> = Object.freeze({
  maxBytes: 16 * 1024,
  timeoutMs: 10_000,
});

/** `application/json`, with or without parameters (`; charset=utf-8`); nothing else. */
export function isJsonType(value: string | undefined): boolean {
  return /^application\/json\s*(;|$)/i.test(value ?? '');
}

/** The request declares a body (a length above 0, or chunks). */
export const hasBody = (req: IncomingMessage): boolean =>
  req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

/**
 * Reads a request's JSON body within `limits`: 415 unless it says `application/json`, 413 when it
 * declares or sends more than `maxBytes` (reading stops there; the connection is closed after the
 * answer), 408 when it does not arrive in time, 400 when it is not JSON. An empty body is `{}`.
 */
export async function readJsonBody(
  req: IncomingMessage,
  limits: BodyLimits = DEFAULT_BODY_LIMITS,
): Promise<unknown> {
  if (!isJsonType(req.headers['content-type']))
    throw new HttpError(415, 'expected Content-Type: application/json');
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limits.maxBytes) throw tooLarge(req, limits);
  const chunks: Buffer[] = [];
  let size = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      req.socket?.setKeepAlive(false);
      reject(new HttpError(408, `request body not received within ${limits.timeoutMs} ms`));
    }, limits.timeoutMs);
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) {
        cleanup();
        reject(tooLarge(req, limits));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new HttpError(400, `request body: ${err.message}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      // Whatever is still coming is not read: pause, and the answer closes the connection.
      req.pause();
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `request body is not JSON: ${(err as Error).message}`);
  }
}

function tooLarge(_req: IncomingMessage, limits: BodyLimits): HttpError {
  return new HttpError(413, `request body over ${limits.maxBytes} bytes`);
}
