import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

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
 * The collector's HTTP face: routes by path pattern (`/collections/:dataset/items`), GET unless the
 * key names another method (`POST /admin/...`); an `HttpError` becomes its status with a JSON
 * message, anything else a 500.
 */
export async function startHttpApi(
  opts: { host: string; port: number },
  routes: Record<string, Route>,
): Promise<HttpApi> {
  const compiled = Object.entries(routes).map(([key, route]) => compile(key, route));
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const segments = url.pathname.split('/').filter(Boolean);
    const method = req.method ?? 'GET';
    let found: { c: Compiled; params: Record<string, string> } | undefined;
    const allowed = new Set<string>();
    for (const c of compiled) {
      const params = match(c, segments);
      if (!params) continue;
      allowed.add(c.method);
      if (allows(c, method)) {
        found = { c, params };
        break;
      }
    }
    if (!found) {
      if (allowed.size === 0) return json(res, 404, { error: `no route ${url.pathname}` });
      res.setHeader('allow', [...allowed].join(', '));
      return json(res, 405, {
        error: `${method} is not allowed on ${url.pathname}; use ${[...allowed].join(' or ')}`,
      });
    }
    const base = `http://${req.headers.host ?? `${opts.host}:${opts.port}`}`;
    // Run inside an async function, so a route that throws before its first await is answered too,
    // instead of ending the process.
    const { c, params } = found;
    (async () => c.route({ req, res, params, query: url.searchParams, base }))().catch((err: Error) => {
      if (res.headersSent) {
        res.destroy(err);
        return;
      }
      if (err instanceof HttpError) json(res, err.status, { error: err.message });
      else json(res, 500, { error: err.message });
    });
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

export { json as sendJson };
