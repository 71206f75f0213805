import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { hostRefusal } from './allowed-hosts.js';
import { CloudErrorCode } from './errors.js';
import { parseRequestTarget } from './http-target.js';

/** What a route handler gets: the request, its response, path parameters and the query string. */
export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Base URL of this server as the client addressed it (for links). */
  base: string;
}
export type Route = (ctx: RouteContext) => Promise<void> | void;

/** An error a client caused or can act on; its status and message go back as JSON. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** More fields of the JSON answer beside `error` (e.g. `reasons` of a refused input). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface HttpApi {
  readonly port: number;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void => {
  res.writeHead(status, { 'content-type': contentType }).end(JSON.stringify(body));
};

interface Compiled {
  method: string;
  pattern: string;
  parts: string[];
  route: Route;
}

/** `POST /admin/x` names its method; a bare pattern is GET (and HEAD). */
function compile(key: string, route: Route): Compiled {
  const [method, pattern] = /^[A-Z]+ /.test(key) ? key.split(' ', 2) : ['GET', key];
  return {
    method: method as string,
    pattern: pattern as string,
    parts: (pattern as string).split('/').filter(Boolean),
    route,
  };
}

/**
 * Route parameters that are secrets (an install link's one-time token): a log line names the route
 * with `(redacted)` in their place, never the request's own target.
 */
const SECRET_PARAMS: ReadonlySet<string> = new Set(['token']);

/** The request's target as log lines show it: a secret path parameter of its route redacted. */
function loggableTarget(compiled: readonly Compiled[], url: string | undefined): string {
  const target = parseRequestTarget(url);
  if (!target.ok) return '(not a valid target)';
  const query = target.query.size > 0 ? `?${target.query}` : '';
  for (const c of compiled) {
    if (!c.parts.some((p) => p.startsWith(':') && SECRET_PARAMS.has(p.slice(1)))) continue;
    if (!match(c, target.segments)) continue;
    const parts = c.parts.map((p, i) =>
      p.startsWith(':') && SECRET_PARAMS.has(p.slice(1)) ? '(redacted)' : target.segments[i],
    );
    return `/${parts.join('/')}${query}`;
  }
  return `${target.path}${query}`;
}

const allows = (c: Compiled, method: string) =>
  c.method === method || (c.method === 'GET' && method === 'HEAD');

function match(c: Compiled, segments: string[]): Record<string, string> | undefined {
  if (c.parts.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < c.parts.length; i++) {
    const p = c.parts[i] as string;
    const s = segments[i] as string;
    if (p.startsWith(':')) {
      try {
        params[p.slice(1)] = decodeURIComponent(s);
      } catch {
        return undefined;
      }
    } else if (p !== s) return undefined;
  }
  return params;
}

/**
 * Bounds of the collector's HTTP server (cloud/README.md, "HTTP limits"). Node's defaults are looser
 * (5 min per request, 2000 headers) and checked only every 30 s; these are explicit so that a slow or
 * hostile client holds a connection for seconds, not minutes.
 */
export interface HttpLimits {
  /** The request line and headers must arrive within this. */
  headersTimeoutMs: number;
  /** The whole request (with any body) must arrive within this. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** A connection with no traffic either way (e.g. a stalled download) is closed after this. */
  idleTimeoutMs: number;
  /** How often the server looks for requests over their time limits. */
  checkIntervalMs: number;
  /** Request line and headers together; more is a 431. */
  maxHeaderBytes: number;
  /** Headers kept per request; Node ignores the ones beyond. */
  maxHeadersCount: number;
  /** A declared body (Content-Length) above this is a 413. No route reads a body. */
  maxBodyBytes: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 60_000,
  checkIntervalMs: 1_000,
  // OGC queries can be long (up to 100 parameter names); 32 KiB holds them with room to spare.
  maxHeaderBytes: 32 * 1024,
  maxHeadersCount: 100,
  maxBodyBytes: 64 * 1024,
});

/**
 * Where the causes of 500s go (a pino logger fits). Refused requests are counted, not logged: a
 * client sending garbage must not be able to fill the disk.
 */
export interface HttpLog {
  error(obj: object, msg: string): void;
}

export interface HttpApiOptions {
  host: string;
  port: number;
  log?: HttpLog;
  /** Called with the status of every 4xx/5xx answer, also those given before routing (a metric counts them). */
  onError?: (status: number) => void;
  limits?: Partial<HttpLimits>;
  /**
   * Which Host headers are answered (allowed-hosts.ts); another is a 421 before routing. Unset: any.
   */
  allowedHost?: (hostHeader: string | undefined) => boolean;
  /**
   * Path prefixes answered whatever the Host: `/edge/` (install links and releases), which Pis fetch by
   * the name `edge add --url` was given; an install link is a secret of its own, releases are public.
   */
  anyHostPaths?: readonly string[];
}

/** Status lines for malformed HTTP (Node's `clientError`), by parser error code. */
const CLIENT_ERROR_STATUS: ReadonlyMap<string, [number, string]> = new Map([
  ['HPE_HEADER_OVERFLOW', [431, 'Request Header Fields Too Large']],
  ['HPE_CHUNK_EXTENSIONS_OVERFLOW', [413, 'Payload Too Large']],
  ['ERR_HTTP_REQUEST_TIMEOUT', [408, 'Request Timeout']],
]);

/**
 * Applies `limits` to `server` and answers malformed HTTP (a request line or header the parser
 * refuses, a request over its time) with a short status and a closed connection, counted.
 */
function guardServer(server: Server, limits: HttpLimits, onError: (status: number) => void): void {
  server.maxHeadersCount = limits.maxHeadersCount;
  // A client that half-closes after its request (`printf ... | nc -N`) still gets the answer of an
  // async route; Node's default ends the socket at the client's FIN and drops it. The request and
  // idle timeouts bound how long such a connection can last.
  // (Node's own switch since its first releases, not in its typings; the tests cover it.)
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy());
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // A reset or a socket already gone cannot be answered.
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
    if (err.code !== 'ECONNRESET' && socket.writable && !inFlight?.headersSent) {
      const [status, reason] = CLIENT_ERROR_STATUS.get(err.code ?? '') ?? [400, 'Bad Request'];
      onError(status);
      answerRaw(socket, status, reason, `${reason}: malformed HTTP request (${err.code ?? 'unknown'})`);
      return;
    }
    socket.destroy();
  });
  // Without a listener Node drops a CONNECT without a word; this is no proxy, so say so.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    onError(405);
    answerRaw(socket, 405, 'Method Not Allowed', 'CONNECT: this server is not a proxy');
  });
}

/** A whole response written straight to the socket (no ServerResponse exists), then closed. */
function answerRaw(socket: Duplex, status: number, reason: string, text: string): void {
  const body = `${text}\n`;
  socket.on('error', () => {});
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nConnection: close\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;

/**
 * The collector's HTTP face: routes by path pattern (`/collections/:dataset/items`), GET unless the
 * key names another method (`POST /admin/...`). A target that is not a valid path is a 400 before
 * any route sees it; an `HttpError` becomes its status with a JSON message; anything else a 500 whose
 * cause goes to the log only (the client gets a code and a reference to find it there). Nothing a
 * request carries can end the process.
 */
export async function startHttpApi(opts: HttpApiOptions, routes: Record<string, Route>): Promise<HttpApi> {
  const compiled = Object.entries(routes).map(([key, route]) => compile(key, route));
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...opts.limits };
  const log = opts.log;
  const counted = (status: number) => {
    if (status >= 400) opts.onError?.(status);
  };
  const answer = (res: ServerResponse, status: number, body: unknown) => {
    counted(status);
    json(res, status, body);
  };

  /** The answer to a route's failure: its own status for an HttpError, else a 500 without details. */
  const failed = (req: IncomingMessage, res: ServerResponse, err: unknown) => {
    try {
      if (res.headersSent) {
        // A client going away mid-answer is no server fault; anything else is logged.
        if (!res.destroyed) {
          log?.error(
            { err, method: req.method, url: loggableTarget(compiled, req.url) },
            'HTTP route failed after its answer began',
          );
        }
        res.destroy();
        return;
      }
      if (err instanceof HttpError) return answer(res, err.status, { ...err.details, error: err.message });
      const ref = randomBytes(6).toString('hex');
      log?.error(
        { err, ref, method: req.method, url: loggableTarget(compiled, req.url) },
        'HTTP route failed',
      );
      answer(res, 500, {
        error: `internal error; the collector's log has the cause under ref ${ref}`,
        code: CloudErrorCode.HTTP_INTERNAL,
        ref,
      });
    } catch {
      // Answering failed as well (e.g. a header the route set is invalid): drop the connection.
      res.destroy();
    }
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const target = parseRequestTarget(req.url);
    if (!target.ok) {
      res.setHeader('connection', 'close');
      return answer(res, 400, { error: target.error });
    }
    if (
      opts.allowedHost &&
      !opts.allowedHost(req.headers.host) &&
      !opts.anyHostPaths?.some((p) => target.path.startsWith(p))
    ) {
      res.setHeader('connection', 'close');
      return answer(res, 421, { error: hostRefusal(req.headers.host) });
    }
    // No route reads a body: one is refused when declared too large, and never kept for keep-alive.
    if (hasBody(req)) res.setHeader('connection', 'close');
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limits.maxBodyBytes) {
      return answer(res, 413, { error: `request body over ${limits.maxBodyBytes} bytes` });
    }
    const method = req.method ?? 'GET';
    let found: { c: Compiled; params: Record<string, string> } | undefined;
    const allowed = new Set<string>();
    for (const c of compiled) {
      const params = match(c, target.segments);
      if (!params) continue;
      allowed.add(c.method);
      if (allows(c, method)) {
        found = { c, params };
        break;
      }
    }
    if (!found) {
      if (allowed.size === 0) return answer(res, 404, { error: `no route ${target.path}` });
      res.setHeader('allow', [...allowed].join(', '));
      return answer(res, 405, {
        error: `${method} is not allowed on ${target.path}; use ${[...allowed].join(' or ')}`,
      });
    }
    const base = `http://${req.headers.host ?? `${opts.host}:${opts.port}`}`;
    // Run inside an async function, so a route that throws before its first await is answered too.
    const { c, params } = found;
    (async () => c.route({ req, res, params, query: target.query, base }))().catch((err: unknown) =>
      failed(req, res, err),
    );
  };

  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.checkIntervalMs,
    },
    (req, res) => {
      // Whatever routing throws is answered here: no request can end the process.
      try {
        handle(req, res);
      } catch (err) {
        failed(req, res, err);
      }
    },
  );
  guardServer(server, limits, counted);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : opts.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export { json as sendJson };
