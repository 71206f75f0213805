import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

export interface HttpApi {
  readonly port: number;
  close(): Promise<void>;
}

const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

/** The collector's HTTP face: GET routes by exact path; errors become JSON with a message. */
export async function startHttpApi(
  opts: { host: string; port: number },
  routes: Record<string, Route>,
): Promise<HttpApi> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = routes[path];
    if (!route) return json(res, 404, { error: `no route ${path}`, routes: Object.keys(routes) });
    if (req.method !== 'GET') return json(res, 405, { error: 'only GET is supported' });
    Promise.resolve(route(req, res)).catch((err: Error) => {
      if (!res.headersSent) json(res, 500, { error: err.message });
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
