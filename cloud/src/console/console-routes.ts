import { type ControlReply, centralSensors, isSubjectToken, SensorConfig } from '@fieldbeam/protocol';
import type { NatsConnection } from '@nats-io/transport-node';
import type { DatasetDef } from '../datasets/dataset-config.js';
import { windowToRebuild } from '../datasets/rebuild.js';
import type { WindowStore } from '../datasets/window-store.js';
import { CloudError, CloudErrorCode } from '../errors.js';
import { CentralSensorStore } from '../fleet/central-sensors.js';
import { DEFAULT_CONTROL_TIMEOUT_MS, EdgeControlError, requestEdge } from '../fleet/edge-control.js';
import { offlineMessage } from '../fleet/fleet-view.js';
import { HttpError, type Route, type RouteContext, sendJson } from '../http-api.js';
import { clientAddress } from './client-address.js';
import {
  AddSensorRequest,
  type CentralSensor,
  LoginRequest,
  type RebuildAnswer,
  type RejectsAnswer,
  type SensorsChanged,
  type SessionAnswer,
} from './console-api.js';
import {
  type ConsoleSessions,
  checkSameOrigin,
  clearSessionCookie,
  requireWrite,
  sessionOf,
  setSessionCookie,
} from './console-auth.js';
import { type ConsoleData, consoleBounds } from './console-data.js';
import type { ConsoleLive } from './console-live.js';
import { ConsoleFiles, setConsoleHeaders, wantsHtml } from './console-static.js';
import { type IngestHealthDeps, ingestHealth } from './ingest-health.js';
import { LoginLimiter } from './login-limiter.js';
import { type BodyLimits, DEFAULT_BODY_LIMITS, hasBody, readJsonBody } from './request-body.js';
import { ReusedAnswers } from './reused-answers.js';

/** How long an edge's answer to a rejects request is shown to everyone again instead of asking anew. */
const REJECTS_REUSE_MS = 5000;

export interface ConsoleRouteDeps {
  data: ConsoleData;
  sessions: ConsoleSessions;
  files: ConsoleFiles;
  live: ConsoleLive;
  nc: NatsConnection;
  windows: WindowStore;
  datasets: readonly DatasetDef[];
  ingest: IngestHealthDeps;
  body?: BodyLimits;
  /** Failed logins per address; default DEFAULT_LOGIN_LIMITS. */
  logins?: LoginLimiter;
  controlTimeoutMs?: number;
}

/** Every console answer carries the console's headers, and JSON is never cached. */
const consoleRoute =
  (route: Route): Route =>
  (ctx) => {
    setConsoleHeaders(ctx.res);
    ctx.res.setHeader('cache-control', 'no-store');
    return route(ctx);
  };

const edgeIdOf = (ctx: RouteContext): string => {
  const id = ctx.params.id ?? '';
  if (!isSubjectToken(id)) throw new HttpError(400, `"${id.slice(0, 100)}" is not an edge id`);
  return id;
};

/** A query parameter that must be there, of plain size. */
function param(ctx: RouteContext, name: string, max = 200): string {
  const v = ctx.query.get(name);
  if (!v || v.length > max) throw new HttpError(400, `${name}: required, at most ${max} characters`);
  return v;
}

/**
 * `GET /` for a browser (Accept prefers text/html): the console's shell; any other client gets
 * `json`, the OGC API landing page, exactly as before.
 */
export function consoleRoot(files: ConsoleFiles, json: Route): Route {
  return (ctx) => {
    ctx.res.setHeader('vary', 'Accept');
    if (!wantsHtml(ctx.req.headers.accept)) return json(ctx);
    files.shell(ctx.res, ctx.req.headers['if-none-match'], ctx.req.method === 'HEAD');
  };
}

/** The console's routes: its API under `/console/api/`, login, live events, and the app's files. */
export function consoleRoutes(deps: ConsoleRouteDeps): Record<string, Route> {
  const { data, sessions, files, live, nc } = deps;
  const logins = deps.logins ?? new LoginLimiter();
  const limits = deps.body ?? DEFAULT_BODY_LIMITS;
  let sensorStore: Promise<CentralSensorStore> | undefined;
  const sensorsOf = () => {
    sensorStore ??= CentralSensorStore.open(nc).catch((err) => {
      sensorStore = undefined;
      throw err;
    });
    return sensorStore;
  };

  const session = (ctx: RouteContext): SessionAnswer => {
    const until = sessions.valid(sessionOf(ctx.req));
    return {
      writable: sessions.writable,
      loggedIn: until !== undefined,
      expiresAt: until === undefined ? null : new Date(until).toISOString(),
    };
  };

  const centralOf = async (id: string) => {
    const store = await sensorsOf();
    const [own, all] = await Promise.all([
      store.read(centralSensors.edgeKey(id)),
      store.read(centralSensors.allKey),
    ]);
    return {
      revision: own.revision,
      sensors: own.value.sensors as CentralSensor[],
      all: all.value.sensors as CentralSensor[],
      invalid: own.invalid ?? null,
    };
  };

  /** Changes an edge's central key, with the store's errors as HTTP answers (422: the reasons). */
  const changeSensors = async (
    id: string,
    edit: Parameters<CentralSensorStore['change']>[1],
  ): Promise<SensorsChanged> => {
    const known = await data.entry(id);
    if (!known) throw new HttpError(404, `${id} is not a registered edge and has never sent a heartbeat`);
    try {
      const { after } = await (await sensorsOf()).change(centralSensors.edgeKey(id), edit);
      return {
        edge: id,
        revision: after.revision,
        sensors: after.value.sensors as CentralSensor[],
        changed: true,
      };
    } catch (err) {
      if (err instanceof CloudError && err.code === CloudErrorCode.SENSOR_CONFIG_INVALID)
        throw new HttpError(422, err.message, { reasons: [err.message] });
      if (err instanceof CloudError && err.code === CloudErrorCode.SENSOR_CONFIG_CONFLICT)
        throw new HttpError(409, err.message);
      throw err;
    }
  };

  const shell: Route = (ctx) => {
    const segments = Object.values(ctx.params);
    if (segments[0] === 'api' || segments[0] === 'events')
      throw new HttpError(404, `no route ${ctx.req.url?.split('?')[0] ?? ''}`);
    const last = segments.at(-1);
    const head = ctx.req.method === 'HEAD';
    if (last !== undefined && ConsoleFiles.isFileName(last))
      return files.serve(ctx.res, ctx.req.headers['if-none-match'], segments, head);
    if (segments.some((s) => ConsoleFiles.isFileName(s))) throw new HttpError(404, 'no such console file');
    files.shell(ctx.res, ctx.req.headers['if-none-match'], head);
  };

  // One rejects request per edge (and limit) every few seconds, whoever asks: see ReusedAnswers.
  const rejectsAsked = new ReusedAnswers<ControlReply<'rejects'>>(REJECTS_REUSE_MS, 1000);

  const routes: Record<string, Route> = {
    '/console/api/session': ({ res, ...ctx }) => sendJson(res, 200, session({ res, ...ctx })),
    'POST /console/login': async (ctx) => {
      if (!sessions.writable)
        throw new HttpError(
          403,
          'the console is read-only: set FB_ADMIN_TOKEN on the collector to allow changes',
        );
      checkSameOrigin(ctx.req);
      // Clients on this machine share one count, like any one address.
      const address = clientAddress(ctx.req) ?? 'this machine';
      const wait = logins.retryAfterS(address);
      if (wait > 0) {
        ctx.res.setHeader('connection', 'close');
        ctx.res.setHeader('retry-after', String(wait));
        throw new HttpError(
          429,
          `too many failed logins from ${address} (${logins.limits.failures} per ${logins.limits.windowMs / 1000} s); try again in ${wait} s`,
        );
      }
      const body = LoginRequest.safeParse(await readJsonBody(ctx.req, limits));
      if (!body.success) throw new HttpError(400, 'expected {"token": "<FB_ADMIN_TOKEN>"}');
      const started = sessions.login(body.data.token);
      if (!started) {
        logins.failed(address);
        throw new HttpError(401, 'wrong admin token');
      }
      logins.succeeded(address);
      setSessionCookie(ctx.req, ctx.res, started.id, sessions.limits.ttlMs);
      sendJson(ctx.res, 200, {
        writable: true,
        loggedIn: true,
        expiresAt: new Date(started.expiresAt).toISOString(),
      } satisfies SessionAnswer);
    },
    'POST /console/logout': async (ctx) => {
      checkSameOrigin(ctx.req);
      await readJsonBody(ctx.req, limits);
      sessions.logout(sessionOf(ctx.req));
      clearSessionCookie(ctx.res);
      sendJson(ctx.res, 200, {
        writable: sessions.writable,
        loggedIn: false,
        expiresAt: null,
      } satisfies SessionAnswer);
    },
    '/console/api/fleet': async ({ res }) => sendJson(res, 200, await data.fleet()),
    '/console/api/edges/:id': async (ctx) => {
      const id = edgeIdOf(ctx);
      const edge = await data.edge(id);
      if (!edge) throw new HttpError(404, `${id} is not a registered edge and has never sent a heartbeat`);
      sendJson(ctx.res, 200, { ...edge, central: await centralOf(id) });
    },
    '/console/api/edges/:id/rejects': async (ctx) => {
      const id = edgeIdOf(ctx);
      const found = await data.entry(id);
      if (!found) throw new HttpError(404, `${id} is not a registered edge and has never sent a heartbeat`);
      if (!found.entry.online) throw new HttpError(409, offlineMessage(found.entry));
      const limitText = ctx.query.get('limit');
      const limit = limitText === null ? undefined : Number(limitText);
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 200))
        throw new HttpError(400, 'limit: an integer from 1 to 200');
      try {
        const reply = await rejectsAsked.get(`${id} ${limit ?? ''}`, () =>
          requestEdge(nc, id, 'rejects', limit ? { limit } : undefined, {
            timeoutMs: deps.controlTimeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS,
          }),
        );
        sendJson(ctx.res, 200, { edge: id, rejects: reply.rejects } satisfies RejectsAnswer);
      } catch (err) {
        if (!(err instanceof EdgeControlError)) throw err;
        const status =
          err.code === CloudErrorCode.EDGE_NOT_CONNECTED
            ? 409
            : err.code === CloudErrorCode.EDGE_TIMEOUT
              ? 504
              : 502;
        throw new HttpError(status, err.message);
      }
    },
    '/console/api/edges/:id/series': async (ctx) => {
      const id = edgeIdOf(ctx);
      const station = param(ctx, 'station');
      const variable = param(ctx, 'variable');
      const sinceText = ctx.query.get('since');
      const now = Date.now();
      const since =
        sinceText === null ? new Date(now - consoleBounds.seriesDefaultAgeMs) : new Date(sinceText);
      if (Number.isNaN(since.getTime()) || !(sinceText === null || /^\d{4}-\d\d-\d\dT/.test(sinceText)))
        throw new HttpError(400, 'since: an ISO-8601 time such as 2026-12-01T00:00:00Z');
      if (since.getTime() < now - consoleBounds.seriesMaxAgeMs)
        throw new HttpError(400, `since: at most ${consoleBounds.seriesMaxAgeMs / 86_400_000} days back`);
      sendJson(ctx.res, 200, await data.series(id, station, variable, since));
    },
    'POST /console/api/edges/:id/sensors': async (ctx) => {
      requireWrite(sessions, ctx.req);
      const id = edgeIdOf(ctx);
      const body = AddSensorRequest.safeParse(await readJsonBody(ctx.req, limits));
      if (!body.success)
        throw new HttpError(422, 'expected {"sensor": {"topic": ..., "decoder": ...}}', {
          reasons: body.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
        });
      const sensor = SensorConfig.safeParse(body.data.sensor);
      if (!sensor.success) {
        const reasons = sensor.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
        throw new HttpError(422, `sensor refused (an edge would refuse it too): ${reasons.join('; ')}`, {
          reasons,
        });
      }
      const s = sensor.data;
      const changed = await changeSensors(id, (v) => ({
        ...v,
        sensors: [...v.sensors.filter((x) => x.topic !== s.topic), s],
      }));
      live.wake();
      sendJson(ctx.res, 200, changed);
    },
    'DELETE /console/api/edges/:id/sensors': async (ctx) => {
      requireWrite(sessions, ctx.req);
      const id = edgeIdOf(ctx);
      const topic = param(ctx, 'topic', 256);
      if (hasBody(ctx.req)) await readJsonBody(ctx.req, limits);
      const current = await centralOf(id);
      if (!current.sensors.some((x) => x.topic === topic))
        throw new HttpError(404, `the central config of ${id} has no sensor on ${topic}`);
      sendJson(
        ctx.res,
        200,
        await changeSensors(id, (v) => ({ ...v, sensors: v.sensors.filter((x) => x.topic !== topic) })),
      );
    },
    '/console/api/datasets': async ({ res }) => sendJson(res, 200, await data.datasetsAnswer()),
    'POST /console/api/datasets/:dataset/windows/:start/rebuild': async (ctx) => {
      requireWrite(sessions, ctx.req);
      await readJsonBody(ctx.req, limits);
      const target = windowToRebuild(deps.datasets, ctx.params.dataset ?? '', ctx.params.start ?? '');
      if ('error' in target)
        throw new HttpError(target.error.startsWith('no dataset') ? 404 : 400, target.error);
      await deps.windows.requestRebuild(target.def, target.start, `console:${new Date().toISOString()}`);
      live.wake();
      sendJson(ctx.res, 202, {
        dataset: target.def.name,
        start: new Date(target.start).toISOString(),
        state: 'due',
      } satisfies RebuildAnswer);
    },
    '/console/api/iss': async ({ res }) => sendJson(res, 200, await data.iss()),
    '/console/api/ingest': async ({ res }) => sendJson(res, 200, await ingestHealth(deps.ingest)),
    '/console/events': (ctx) =>
      live.connect(ctx, {
        address: clientAddress(ctx.req),
        admin: sessions.valid(sessionOf(ctx.req)) !== undefined,
      }),
  };
  const wrapped: Record<string, Route> = {};
  for (const [key, route] of Object.entries(routes)) wrapped[key] = consoleRoute(route);
  // The app: its shell for `/console`, every page path, and its files by name.
  wrapped['/console'] = consoleRoute(shell);
  wrapped['/console/:a'] = consoleRoute(shell);
  wrapped['/console/:a/:b'] = consoleRoute(shell);
  wrapped['/console/:a/:b/:c'] = consoleRoute(shell);
  return wrapped;
}
