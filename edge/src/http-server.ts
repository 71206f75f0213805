import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Counter, type Registry } from 'prom-client';

export interface StatusHttpServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Bounds of the status server (edge/README.md, "HTTP status"). It serves two small GETs, so its
 * limits are tight: a slow or hostile client holds a connection for seconds, and headers beyond
 * 8 KiB are a 431. Node's defaults (5 min per request, 16 KiB, checked every 30 s) are looser.
 */
export interface StatusHttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** No traffic either way for this long closes the connection. */
  idleTimeoutMs: number;
  /** How often the server looks for requests over their time limits. */
  checkIntervalMs: number;
  /** Request line and headers together. */
  maxHeaderBytes: number;
  maxHeadersCount: number;
}

export const DEFAULT_STATUS_HTTP_LIMITS: Readonly<StatusHttpLimits> = Object.freeze({
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  checkIntervalMs: 1_000,
  maxHeaderBytes: 8 * 1024,
  maxHeadersCount: 50,
});

/** RFC 3986 path characters with well-formed escapes; anything else in a path is a 400. */
const ORIGIN_PATH = /^(?:\/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*)+$/;

/** Parser error codes of malformed HTTP that have their own status; the rest are a 400. */
const CLIENT_ERROR_STATUS: ReadonlyMap<string, [number, string]> = new Map([
  ['HPE_HEADER_OVERFLOW', [431, 'Request Header Fields Too Large']],
  ['HPE_CHUNK_EXTENSIONS_OVERFLOW', [413, 'Payload Too Large']],
  ['ERR_HTTP_REQUEST_TIMEOUT', [408, 'Request Timeout']],
]);

const REFUSED_METRIC = 'fb_edge_http_refused_total';

const text = (res: ServerResponse, status: number, body: string) =>
  res.writeHead(status, { 'content-type': 'text/plain' }).end(body);

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

/**
 * `/healthz` (JSON status, 503 when unhealthy) and `/metrics` (Prometheus text), GET or HEAD only.
 * The request target is checked as a path, never handed to a URL parser; malformed HTTP is answered
 * with a status and a closed connection; every refusal is counted in `fb_edge_http_refused_total`.
 */
export async function startStatusHttp(
  opts: {
    host: string;
    port: number;
    limits?: Partial<StatusHttpLimits>;
    /** Requests under `/ingest/` go here, whatever their method (HTTP intake, when enabled). */
    intake?: (req: IncomingMessage, res: ServerResponse, path: string) => void;
  },
  registry: Registry,
  health: () => { ok: boolean; [k: string]: unknown },
): Promise<StatusHttpServer> {
  const limits: StatusHttpLimits = { ...DEFAULT_STATUS_HTTP_LIMITS, ...opts.limits };
  // A server started again on the same registry (a restart in one process) counts on.
  const refused =
    (registry.getSingleMetric(REFUSED_METRIC) as Counter<'status'> | undefined) ??
    new Counter({
      name: REFUSED_METRIC,
      help: 'Requests to the status server answered with a 4xx (malformed HTTP included), by status',
      labelNames: ['status'],
      registers: [registry],
    });
  const refuse = (res: ServerResponse, status: number, body: string) => {
    refused.inc({ status: String(status) });
    text(res, status, body);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const raw = req.url ?? '';
    const q = raw.indexOf('?');
    const path = q === -1 ? raw : raw.slice(0, q);
    if (!ORIGIN_PATH.test(path)) {
      res.setHeader('connection', 'close');
      return refuse(res, 400, 'bad request target: expected a path such as /healthz\n');
    }
    if (opts.intake && path.startsWith('/ingest/')) return opts.intake(req, res, path);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      // The body of a refused request is never read, so the connection is not kept.
      res.setHeader('connection', 'close');
      return refuse(res, 405, 'only GET and HEAD\n');
    }
    if (path === '/healthz') {
      const h = health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h));
    } else if (path === '/metrics') {
      registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
        () => text(res, 500, 'metrics could not be collected\n'),
      );
    } else {
      refuse(res, 404, 'not found: try /healthz or /metrics\n');
    }
  };

  const server: Server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: limits.checkIntervalMs,
    },
    (req, res) => {
      // Nothing a request carries may end the agent.
      try {
        handle(req, res);
      } catch {
        if (!res.headersSent) text(res, 500, 'internal error\n');
        else res.destroy();
      }
    },
  );
  server.maxHeadersCount = limits.maxHeadersCount;
  // A client that half-closes after its request still gets the (async) /metrics answer; Node's default
  // ends the socket at the client's FIN. The request and idle timeouts bound such a connection.
  // (Node's own switch since its first releases, not in its typings; the tests cover it.)
  (server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
  server.setTimeout(limits.idleTimeoutMs, (socket) => socket.destroy());
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const [status, reason] = CLIENT_ERROR_STATUS.get(err.code ?? '') ?? [400, 'Bad Request'];
    refused.inc({ status: String(status) });
    answerRaw(socket, status, reason, `${reason}: malformed HTTP request`);
  });
  // Without a listener Node drops a CONNECT without a word; this is no proxy, so say so.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    refused.inc({ status: '405' });
    answerRaw(socket, 405, 'Method Not Allowed', 'only GET and HEAD');
  });
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
