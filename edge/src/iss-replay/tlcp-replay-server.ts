import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { type IssLog, silentLog } from '../iss/iss-log.js';
import { ISS_ADAPTER_SET } from '../iss/isslive-schema.js';
import { startGenerator } from './iss-value-generator.js';
import { createItemFeed, type ItemUpdate } from './item-feed.js';
import {
  type ReplayLine,
  type ReplayOptions,
  readReplayFile,
  startReplay,
  toItemUpdate,
} from './replay-source.js';
import { parseHttpBody, parseParams, parseWsRequest, tlcpLine } from './tlcp-encoding.js';
import { TlcpSession, type TlcpStream } from './tlcp-session.js';

type Session = TlcpSession;

/**
 * A local Lightstreamer server speaking just enough TLCP 2.5.0 for `lightstreamer-client-node`
 * 9.2.2 to run against it as it would against push.lightstreamer.com (tlcp.md §0): WebSocket
 * streaming with `WSOK` before `CONOK`, the HTTP create/bind/control paths the client falls back to
 * after any failed WebSocket connect, session recovery from a log of data notifications, `PROBE`
 * keep-alives, MERGE snapshots and delta-encoded updates. It serves the ISSLIVE adapter set from a
 * recording, a generator, or whatever a test publishes, and can misbehave on request (drop
 * connections, go silent, refuse, restart) so that reconnection can be tested for real.
 */

export const TLCP_SUBPROTOCOL = 'TLCP-2.5.0.lightstreamer.com';

/**
 * `normal`; `silent`: a blackhole, connections are accepted but nothing is answered or sent (no
 * PROBE either); `refuse`: the port is closed, connects fail. Leaving `silent` kills the
 * connections that went quiet, as a network that comes back after a blackhole has lost them.
 */
export type ReplayServerMode = 'normal' | 'silent' | 'refuse';

/** What the server plays into its ISSLIVE feed; without one, only `publish()` feeds it. */
export type ReplayServerSource =
  | ({ kind: 'updates'; updates: ReadonlyArray<ItemUpdate | ReplayLine> } & ReplayPacing)
  | ({ kind: 'file'; path: string } & ReplayPacing)
  | { kind: 'generator'; items?: readonly string[]; rate?: number };
type ReplayPacing = Pick<ReplayOptions, 'speed' | 'loop' | 'retime'>;

export interface TlcpReplayServerOptions {
  /** Default 127.0.0.1: the server is for tests and offline demos, not for the network. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
  adapterSet?: string;
  /** Keep-alive announced in CONOK; PROBE goes out after this much idle time. Default 5000 ms. */
  keepaliveMs?: number;
  source?: ReplayServerSource;
  /** A session with no stream bound for this long is forgotten. Default 60 s. */
  sessionTimeoutMs?: number;
  /** Data notifications kept per session for recovery. Default 50 000. */
  recoveryLogLimit?: number;
  log?: IssLog;
}

export interface TlcpReplayServerStats {
  mode: ReplayServerMode;
  /** Bumped by every restart(); session ids of different epochs never collide. */
  epoch: number;
  sessions: number;
  boundSessions: number;
  subscriptions: number;
  connections: number;
  sessionsCreated: number;
  /** Requests served per path, to tell which of the client's routes a test went through. */
  requests: Record<
    'wsCreate' | 'wsBind' | 'httpCreate' | 'httpBind' | 'httpRecovery' | 'httpControl',
    number
  >;
}

export interface TlcpReplayServer {
  /** Server address for `new LightstreamerClient(url, 'ISSLIVE')`, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly mode: ReplayServerMode;
  /** Pushes updates into the feed (fields left out keep their value). */
  publish(updates: ItemUpdate | ReplayLine | ReadonlyArray<ItemUpdate | ReplayLine>): void;
  /** Signal state the generator reports through TIME_000001 (generator source only). */
  setSignal(acquired: boolean): void;
  setMode(mode: ReplayServerMode): Promise<void>;
  /** Cuts every connection; sessions survive, so the client can recover them. */
  dropConnections(): void;
  /** Closes the port, forgets every session (recovery then fails with CONERR 20), reopens after `downMs`. */
  restart(opts?: { downMs?: number }): Promise<void>;
  stats(): TlcpReplayServerStats;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const REQUEST_LIMIT = 50_000;
const MAX_BODY = 1 << 20;
const SERVER_NAME = 'Fieldbeam TLCP replay';

const clientIp = (req: IncomingMessage) => (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');

/**
 * Path and query of a request target, read as a path: `new URL('//[', base)` would take `[` for a
 * host and throw. Undefined when the target is not a path at all.
 */
function targetOf(raw: string | undefined): { pathname: string; search: string } | undefined {
  if (!raw?.startsWith('/')) return undefined;
  const q = raw.indexOf('?');
  return q === -1 ? { pathname: raw, search: '' } : { pathname: raw.slice(0, q), search: raw.slice(q) };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new Error(`request body over ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function createTlcpReplayServer(opts: TlcpReplayServerOptions = {}): Promise<TlcpReplayServer> {
  const host = opts.host ?? '127.0.0.1';
  const adapterSet = opts.adapterSet ?? ISS_ADAPTER_SET;
  const keepaliveMs = opts.keepaliveMs ?? 5_000;
  const sessionTimeoutMs = opts.sessionTimeoutMs ?? 60_000;
  const log = opts.log ?? silentLog;

  let mode: ReplayServerMode = 'normal';
  let closed = false;
  let epoch = 0;
  let epochTag = randomBytes(4).toString('hex');
  let sessionSeq = 0;
  let sessionsCreated = 0;
  const sessions = new Map<string, Session>();
  const sockets = new Set<Socket>();
  const probes = new Set<NodeJS.Timeout>();
  const requests = { wsCreate: 0, wsBind: 0, httpCreate: 0, httpBind: 0, httpRecovery: 0, httpControl: 0 };

  const feed = createItemFeed();
  feed.onChange((changes) => {
    for (const session of sessions.values()) session.publish(changes);
  });

  // ---- sessions -----------------------------------------------------------------------------

  const head = (session: Session, keepalive: number, ip: string) => [
    tlcpLine('CONOK', session.id, REQUEST_LIMIT, keepalive, '*'),
    tlcpLine('SERVNAME', SERVER_NAME),
    tlcpLine('CLIENTIP', ip),
    tlcpLine('CONS', 'unlimited'),
  ];

  /** A new session, or the CONERR line that refuses it. */
  const createSession = (params: ReadonlyMap<string, string>): Session | string => {
    const requested = params.get('LS_adapter_set') ?? 'DEFAULT';
    if (requested !== adapterSet) {
      return tlcpLine(
        'CONERR',
        2,
        `Requested Adapter Set not available: ${requested} (this server has ${adapterSet})`,
      );
    }
    const id = `S${epochTag}${randomBytes(3).toString('hex')}T${++sessionSeq}`;
    const session = new TlcpSession(id, Date.now(), opts.recoveryLogLimit);
    sessions.set(id, session);
    sessionsCreated++;
    log.debug({ session: id, cause: params.get('LS_cause') }, 'tlcp session created');
    return session;
  };

  /** Binds `stream` to the session named in `params`: the lines to write, or a CONERR line. */
  type Bound = { ok: true; session: Session; tail: string[] } | { ok: false; error: string };
  const bindSession = (params: ReadonlyMap<string, string>, stream: TlcpStream): Bound => {
    const session = sessions.get(params.get('LS_session') ?? '');
    if (session === undefined) return { ok: false, error: tlcpLine('CONERR', 20, 'Session not found') };
    const from = params.get('LS_recovery_from');
    const tail = session.bind(stream, from === undefined ? undefined : Number(from));
    if (tail === undefined)
      return { ok: false, error: tlcpLine('CONERR', 4, 'Recovery point no longer available') };
    return { ok: true, session, tail };
  };

  const destroySession = (session: Session) => {
    sessions.delete(session.id);
    log.debug({ session: session.id }, 'tlcp session destroyed');
  };

  const sweep = setInterval(() => {
    const now = Date.now();
    for (const session of sessions.values()) {
      if (session.unboundSinceMs !== undefined && now - session.unboundSinceMs > sessionTimeoutMs) {
        destroySession(session);
      }
    }
  }, 1_000);

  /** A timer that writes PROBE whenever the stream has been idle for the keep-alive. */
  const keepalive = (stream: TlcpStream) => {
    const timer = setTimeout(() => {
      stream.send(['PROBE']);
      timer.refresh(); // also re-arms while silent, when send wrote nothing
    }, keepaliveMs);
    probes.add(timer);
    return {
      touch: () => timer.refresh(),
      stop: () => {
        clearTimeout(timer);
        probes.delete(timer);
      },
    };
  };

  // ---- WebSocket transport ------------------------------------------------------------------

  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    // The client aborts unless its subprotocol is echoed (and then falls back to HTTP).
    handleProtocols: (protocols) => (protocols.has(TLCP_SUBPROTOCOL) ? TLCP_SUBPROTOCOL : false),
  });

  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const ip = clientIp(req);
    let session: Session | undefined;
    let probe: ReturnType<typeof keepalive> | undefined;
    const stream: TlcpStream = {
      writable: () => mode === 'normal' && ws.readyState === ws.OPEN,
      send(lines) {
        if (!stream.writable()) return;
        ws.send(`${lines.join('\r\n')}\r\n`);
        probe?.touch();
      },
      close: () => ws.close(),
    };

    const onFrame = (text: string) => {
      const request = parseWsRequest(text);
      const params = request.params[0] ?? new Map<string, string>();
      switch (request.name) {
        case 'wsok':
          return stream.send(['WSOK']);
        case 'create_session': {
          requests.wsCreate++;
          const created = createSession(params);
          if (typeof created === 'string') return stream.send([created]);
          session?.unbind(stream, Date.now());
          session = created;
          const tail = created.bind(stream) ?? [];
          stream.send([...head(created, keepaliveMs, ip), ...tail]);
          probe ??= keepalive(stream);
          return;
        }
        case 'bind_session': {
          requests.wsBind++;
          const bound = bindSession(params, stream);
          if (!bound.ok) return stream.send([bound.error]);
          if (session !== bound.session) session?.unbind(stream, Date.now());
          session = bound.session;
          stream.send([...head(bound.session, keepaliveMs, ip), ...bound.tail]);
          probe ??= keepalive(stream);
          return;
        }
        case 'control':
          for (const p of request.params) {
            const reqId = p.get('LS_reqId') ?? '';
            if (session === undefined || !sessions.has(session.id)) {
              stream.send([tlcpLine('REQERR', reqId, 20, 'No session bound to this connection')]);
              continue;
            }
            const result = session.control(p, feed.state);
            if (result.destroy) {
              destroySession(session);
              stream.send([tlcpLine('END', 31, 'Destroyed by client'), ...result.replies]);
              ws.close();
              return;
            }
            // LS_ack=false: SUBOK/UNSUB are the acknowledgement; errors are always reported.
            const replies =
              p.get('LS_ack') === 'false'
                ? result.replies.filter((l) => !l.startsWith('REQOK'))
                : result.replies;
            if (replies.length > 0) stream.send(replies);
          }
          return;
        case 'heartbeat':
          return;
        default:
          log.warn({ request: request.name }, 'tlcp replay: unsupported WebSocket request ignored');
      }
    };

    ws.on('message', (data, isBinary) => {
      if (mode !== 'normal' || isBinary) return; // silent: a blackhole swallows requests too
      try {
        onFrame(data.toString());
      } catch (error) {
        log.warn({ err: error }, 'tlcp replay: bad WebSocket request');
        stream.send([tlcpLine('ERROR', 65, `Bad request: ${String(error)}`)]);
      }
    });
    ws.on('close', () => {
      probe?.stop();
      session?.unbind(stream, Date.now());
    });
    ws.on('error', (error) => log.debug({ err: error }, 'tlcp replay: WebSocket error'));
  });

  // ---- HTTP transport -----------------------------------------------------------------------

  const reply = (res: ServerResponse, lines: readonly string[]) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`${lines.join('\r\n')}\r\n`);
  };

  /** An HTTP streaming response as a session stream; it ends with LOOP once LS_content_length is used up. */
  const httpStream = (res: ServerResponse, contentLength: number): TlcpStream & { sessionRef?: Session } => {
    let written = 0;
    let probe: ReturnType<typeof keepalive> | undefined;
    const stream: TlcpStream & { sessionRef?: Session } = {
      writable: () => mode === 'normal' && !res.writableEnded && !res.destroyed,
      send(lines) {
        if (!stream.writable()) return;
        const text = `${lines.join('\r\n')}\r\n`;
        res.write(text);
        written += Buffer.byteLength(text);
        probe?.touch();
        if (written >= contentLength) res.end('LOOP,0\r\n');
      },
      close: () => res.end(),
    };
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    probe = keepalive(stream);
    res.on('close', () => {
      probe?.stop();
      stream.sessionRef?.unbind(stream, Date.now());
    });
    return stream;
  };

  /** Stands in for a polling reply, which takes the backlog once and ends with LOOP. */
  const pollStream = (): TlcpStream => ({ writable: () => false, send: () => {}, close: () => {} });

  const onHttp = async (req: IncomingMessage, res: ServerResponse) => {
    if (mode !== 'normal') return; // silent: hold the request unanswered until the socket dies
    const url = targetOf(req.url);
    const name = url && /\/lightstreamer\/([a-z_]+)\.txt$/.exec(url.pathname)?.[1];
    if (url === undefined || req.method !== 'POST' || name === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not a TLCP path\n');
      return;
    }
    const body = await readBody(req);
    if (mode !== 'normal') return;
    const query = parseParams(url.search.slice(1));
    const lines = parseHttpBody(body);
    const first = new Map([...query, ...(lines[0] ?? new Map<string, string>())]);
    const ip = clientIp(req);
    const polling = first.get('LS_polling') === 'true';

    switch (name) {
      case 'create_session': {
        requests.httpCreate++;
        const created = createSession(first);
        if (typeof created === 'string') return reply(res, [created]);
        if (polling) {
          // Session created, nothing bound yet: the client binds next, usually over WebSocket.
          return reply(res, [...head(created, 0, ip), 'LOOP,0']);
        }
        const stream = httpStream(res, Number(first.get('LS_content_length') ?? Number.POSITIVE_INFINITY));
        stream.sessionRef = created;
        stream.send([...head(created, keepaliveMs, ip), ...(created.bind(stream) ?? [])]);
        return;
      }
      case 'bind_session': {
        if (first.has('LS_recovery_from')) requests.httpRecovery++;
        else requests.httpBind++;
        if (polling) {
          const poll = pollStream();
          const bound = bindSession(first, poll);
          if (!bound.ok) return reply(res, [bound.error]);
          bound.session.unbind(poll, Date.now());
          return reply(res, [...head(bound.session, 0, ip), ...bound.tail, 'LOOP,0']);
        }
        const stream = httpStream(res, Number(first.get('LS_content_length') ?? Number.POSITIVE_INFINITY));
        const bound = bindSession(first, stream);
        if (!bound.ok) {
          stream.send([bound.error]);
          res.end();
          return;
        }
        stream.sessionRef = bound.session;
        stream.send([...head(bound.session, keepaliveMs, ip), ...bound.tail]);
        return;
      }
      case 'control': {
        requests.httpControl++;
        const session = sessions.get(query.get('LS_session') ?? lines[0]?.get('LS_session') ?? '');
        const replies: string[] = [];
        for (const p of lines) {
          const reqId = p.get('LS_reqId') ?? '';
          if (session === undefined || !sessions.has(session.id)) {
            replies.push(tlcpLine('REQERR', reqId, 20, 'Session not found'));
            continue;
          }
          const result = session.control(p, feed.state);
          replies.push(...result.replies);
          if (result.destroy) {
            destroySession(session);
            const stream = session.stream;
            stream?.send([tlcpLine('END', 31, 'Destroyed by client')]);
            stream?.close();
          }
        }
        return reply(res, replies);
      }
      case 'heartbeat':
        return reply(res, []);
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end(`unsupported TLCP request ${name}\n`);
    }
  };

  // ---- listener and modes -------------------------------------------------------------------

  const http = createServer((req, res) => {
    onHttp(req, res).catch((error) => {
      log.warn({ err: error, url: req.url }, 'tlcp replay: bad HTTP request');
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`${String(error)}\n`);
    });
  });
  http.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  http.on('upgrade', (req: IncomingMessage, socket: Socket, upgradeHead: Buffer) => {
    if (mode !== 'normal') return; // silent: accept the connection, never answer the handshake
    const path = targetOf(req.url)?.pathname;
    if (path === undefined) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (!path.endsWith('/lightstreamer')) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, upgradeHead, (ws) => wss.emit('connection', ws, req));
  });

  const destroySockets = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };

  let port = opts.port ?? 0;
  const listen = async () => {
    // Re-listening after refuse/restart may briefly find the port busy; it is ours, so retry.
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          http.once('error', reject);
          http.listen({ host, port }, () => {
            http.off('error', reject);
            resolve();
          });
        });
        break;
      } catch (error) {
        if (attempt >= 20 || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const address = http.address();
    if (address !== null && typeof address === 'object') port = address.port;
  };
  const stopListening = async () => {
    const done = new Promise<void>((resolve) => http.close(() => resolve()));
    destroySockets();
    await done;
  };

  await listen();

  let transition = Promise.resolve();
  const setMode = (next: ReplayServerMode) => {
    transition = transition.then(async () => {
      if (closed || next === mode) return;
      const previous = mode;
      mode = next;
      log.info({ from: previous, to: next }, 'tlcp replay: mode');
      if (previous === 'silent') destroySockets();
      if (next === 'refuse') await stopListening();
      else if (previous === 'refuse') await listen();
    });
    return transition;
  };

  // ---- source -------------------------------------------------------------------------------

  const normalise = (u: ItemUpdate | ReplayLine): ItemUpdate =>
    'fields' in u ? u : toItemUpdate(u as ReplayLine);
  let driver: { stop(): void; setSignal?(acquired: boolean): void } | undefined;
  const source = opts.source;
  if (source?.kind === 'generator') {
    driver = startGenerator(feed, { items: source.items, rate: source.rate });
  } else if (source !== undefined) {
    const updates =
      source.kind === 'file' ? await readReplayFile(source.path) : source.updates.map(normalise);
    driver = startReplay(feed, updates, {
      speed: source.speed,
      loop: source.loop,
      retime: source.retime,
      onEnd: () => log.info({ updates: updates.length }, 'tlcp replay: end of recording'),
    });
  }

  const close = async () => {
    if (closed) return;
    await transition;
    closed = true;
    driver?.stop();
    clearInterval(sweep);
    for (const timer of probes) clearTimeout(timer);
    probes.clear();
    sessions.clear();
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    if (mode !== 'refuse') await stopListening();
    else destroySockets();
  };

  const server: TlcpReplayServer = {
    get url() {
      return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    },
    host,
    get port() {
      return port;
    },
    get mode() {
      return mode;
    },
    publish(updates) {
      const list = Array.isArray(updates) ? updates : [updates];
      feed.publish((list as ReadonlyArray<ItemUpdate | ReplayLine>).map(normalise));
    },
    setSignal(acquired) {
      if (driver?.setSignal === undefined) throw new Error('setSignal needs the generator source');
      driver.setSignal(acquired);
    },
    setMode,
    dropConnections() {
      log.info({ connections: sockets.size }, 'tlcp replay: dropping connections');
      destroySockets();
    },
    async restart({ downMs = 0 } = {}) {
      await setMode('refuse');
      sessions.clear();
      epoch++;
      epochTag = randomBytes(4).toString('hex');
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await setMode('normal');
    },
    stats: () => {
      const all = [...sessions.values()];
      return {
        mode,
        epoch,
        sessions: all.length,
        boundSessions: all.filter((s) => s.stream !== undefined).length,
        subscriptions: all.reduce((n, s) => n + s.subscriptionCount, 0),
        connections: sockets.size,
        sessionsCreated,
        requests: { ...requests },
      };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
  return server;
}
