import type { IncomingMessage, ServerResponse } from 'node:http';
import { traceIdOfTraceparent } from '@fieldbeam/protocol';
import type { Logger } from 'pino';
import type { EdgeConfig } from '../config.js';
import { EdgeError, EdgeErrorCode } from '../errors.js';
import { createLogThrottle } from '../log-throttle.js';
import type { EdgeMetrics } from '../metrics.js';
import type { ObservationSink, RejectSink } from '../readings.js';
import type { TopicObservations } from '../sources/topic-observations.js';
import { newTraceId } from '../trace-ids.js';
import { ClientTokens } from './client-tokens.js';
import { parseIntake } from './intake-formats.js';

export const INGEST_PREFIX = '/ingest/';

/** Seconds a client is told to wait (Retry-After) while the buffer is full under the `block` policy. */
const FULL_RETRY_AFTER_S = 5;
/** ... and while the intake already handles `max_concurrent` requests. */
const BUSY_RETRY_AFTER_S = 1;

export interface HttpIntakeDeps {
  config: EdgeConfig['http_intake'];
  /** The topic matching and decoding MQTT uses, counting under `http`. */
  decodeTopic: TopicObservations;
  /** Resolves once the observations are committed; rejects with BUFFER_FULL while full under `block`. */
  sink: ObservationSink;
  rejects: RejectSink;
  metrics: EdgeMetrics;
  log: Logger;
  /**
   * Give each request a trace-id, carried by its observations (`trace_ids`, default true): the one of
   * its `traceparent` header when that is valid, else a new one. The 201 answer names it (`trace`).
   */
  traceIds?: boolean;
}

/** A request handler for `POST /ingest/<topic>`; `path` is the request target without its query. */
export type HttpIntake = (req: IncomingMessage, res: ServerResponse, path: string) => void;

/**
 * Readings over HTTP with MQTT QoS 1's guarantee: `201 {count, ids}` is sent only after the readings
 * are committed to the buffer, so a client that got no 201 sends again (observation ids make a
 * repeat harmless). Input alone never causes a 5xx: a bad body is a 400 naming the cause, kept in the
 * reject log like an MQTT reject; a full buffer is a 429 with Retry-After. Every answer is counted in
 * `fb_edge_http_intake_requests_total{client,outcome}`. Bodies are bounded in size and in time, and
 * requests in number (`http_intake`); only requests with a client's token are read at all.
 */
export function createHttpIntake(deps: HttpIntakeDeps): HttpIntake {
  const { config, metrics, log } = deps;
  const tokens = new ClientTokens(config.tokens);
  const received = metrics.received.labels('http');
  const readings = metrics.readings.labels('http');
  const warnings = createLogThrottle(10_000);
  const traceIds = deps.traceIds ?? true;
  let inFlight = 0;

  const answer = (
    res: ServerResponse,
    client: string,
    outcome: string,
    status: number,
    body: Record<string, unknown>,
    headers: Record<string, string> = {},
  ) => {
    metrics.httpIntake.inc({ client, outcome });
    if (res.headersSent || res.destroyed) return;
    res
      .writeHead(status, { 'content-type': 'application/json', ...headers })
      .end(`${JSON.stringify(body)}\n`);
  };
  // An answer before the body is read closes the connection: what is left of the body is not wanted.
  const refuse = (
    res: ServerResponse,
    client: string,
    outcome: string,
    status: number,
    error: string,
    headers: Record<string, string> = {},
  ) => answer(res, client, outcome, status, { error }, { connection: 'close', ...headers });

  const reject = (
    client: string,
    topic: string,
    body: Uint8Array,
    kind: string,
    reason: string,
    trace: string | undefined,
  ) => {
    metrics.rejected.inc({ source: 'http', kind });
    const logged = warnings.pass(kind);
    if (logged)
      log.warn(
        {
          client,
          topic: topic.length > 200 ? `${topic.slice(0, 200)}...` : topic,
          reason,
          kind,
          trace_id: trace,
          ...logged,
        },
        'http intake request rejected (further ones within 10 s counted in fb_edge_rejected_total and kept: fieldbeam-edge rejects)',
      );
    deps.rejects.reject({ source: 'http', topic, reason: `client ${client}: ${reason}`, payload: body });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    const topic = topicOf(path);
    if (typeof topic !== 'string') return refuse(res, '-', 'not_found', 404, topic.error);
    if (req.method !== 'POST')
      return refuse(res, '-', 'not_found', 405, 'only POST to /ingest/<topic>', { allow: 'POST' });
    const caller = tokens.identify(req.headers.authorization);
    if ('missing' in caller)
      return refuse(
        res,
        '-',
        'unauthorized',
        401,
        'a client token is required: Authorization: Bearer <token>',
        {
          'www-authenticate': 'Bearer realm="fieldbeam-edge"',
        },
      );
    if ('wrong' in caller)
      return refuse(res, '-', 'forbidden', 403, "this token is no client's (http_intake.tokens)");
    const { client } = caller;
    const outside = (t: string, orBelow = false) => {
      const filters = tokens.outsideScope(client, t, orBelow);
      return filters === undefined
        ? undefined
        : `client ${client} may not post to the topic ${JSON.stringify(t.slice(0, 200))}: its token is limited to ${filters.join(', ')} (http_intake.tokens.${client}.topics)`;
    };
    // Refused before its body is read when no topic at or below the path's is in the client's scope.
    const scopeError = outside(topic, true);
    if (scopeError !== undefined) return refuse(res, client, 'forbidden', 403, scopeError);
    const declared = Number(req.headers['content-length']);
    if (declared > config.max_body_bytes)
      return refuse(res, client, 'too_large', 413, tooLarge(declared, config.max_body_bytes));

    const receivedMs = Date.now();
    // The caller's trace when it sends a valid traceparent, else a new one: the request's readings,
    // reject and log lines carry it.
    const trace = traceIds
      ? (traceIdOfTraceparent(headerValue(req, 'traceparent')) ?? newTraceId())
      : undefined;
    const body = await readBody(req, config.max_body_bytes, config.body_timeout_ms);
    if (body === 'aborted') return metrics.httpIntake.inc({ client, outcome: 'aborted' });
    if (body === 'timeout')
      return refuse(
        res,
        client,
        'timeout',
        408,
        `the body did not arrive within ${config.body_timeout_ms} ms`,
      );
    if (body === 'too_large') {
      reject(
        client,
        topic,
        new Uint8Array(0),
        'oversized',
        tooLarge(undefined, config.max_body_bytes),
        trace,
      );
      return refuse(res, client, 'too_large', 413, tooLarge(undefined, config.max_body_bytes));
    }
    received.inc();

    const msg = parseIntake({ topic, body, header: (name) => headerValue(req, name) });
    if (!msg.ok) {
      reject(client, topic, body, 'format', msg.reason, trace);
      return answer(res, client, 'rejected', 400, { error: msg.reason });
    }
    // A body format can add levels to the path's topic (Sensor.Community, TTN): the scope holds for the result.
    const formatScopeError = outside(msg.topic);
    if (formatScopeError !== undefined)
      return answer(res, client, 'forbidden', 403, { error: formatScopeError });
    if (msg.empty) return answer(res, client, 'empty', 200, { count: 0, ids: [] });
    const decoded = deps.decodeTopic(msg.topic, msg.payload, receivedMs, msg.carrierTimeMs, trace);
    switch (decoded.kind) {
      case 'unmatched':
        return answer(res, client, 'unmatched', 404, {
          error: `no sensor matches the topic ${JSON.stringify(msg.topic)}: add one to sensors (or turn on auto_register)`,
        });
      case 'ignored':
        return answer(res, client, 'empty', 200, { count: 0, ids: [] });
      case 'rejected':
        reject(client, msg.topic, body, decoded.reject, decoded.reason, trace);
        return answer(res, client, 'rejected', 400, { error: decoded.reason });
      case 'observations': {
        const { observations, refused } = decoded;
        if (refused !== undefined) reject(client, msg.topic, body, 'text', refused, trace);
        try {
          await deps.sink.submit(observations);
        } catch (err) {
          if (err instanceof EdgeError && err.code === EdgeErrorCode.BUFFER_FULL)
            return answer(
              res,
              client,
              'busy',
              429,
              { error: 'the edge buffer is full (buffer.policy block): send again after Retry-After' },
              { 'retry-after': String(FULL_RETRY_AFTER_S) },
            );
          // Not the request's fault (the agent is stopping, the disk failed): the client sends again.
          log.error({ err, client, trace_id: trace }, 'http intake readings could not be stored');
          return answer(
            res,
            client,
            'failed',
            503,
            { error: 'the readings could not be stored now; send again' },
            { 'retry-after': String(FULL_RETRY_AFTER_S) },
          );
        }
        readings.inc(observations.length);
        const ids = observations.map((o) => o.id);
        return answer(res, client, 'stored', 201, {
          count: ids.length,
          ids,
          ...(trace !== undefined ? { trace } : {}),
          ...(refused !== undefined ? { refused } : {}),
        });
      }
    }
  };

  return (req, res, path) => {
    if (inFlight >= config.max_concurrent)
      return refuse(
        res,
        '-',
        'overloaded',
        429,
        `more than ${config.max_concurrent} requests at once (http_intake.max_concurrent)`,
        {
          'retry-after': String(BUSY_RETRY_AFTER_S),
        },
      );
    inFlight++;
    handle(req, res, path)
      .catch((err: unknown) => {
        log.error({ err }, 'http intake request failed');
        if (!res.headersSent) answer(res, '-', 'failed', 500, { error: 'internal error' });
        else res.destroy();
      })
      .finally(() => {
        inFlight--;
      });
  };
}

function tooLarge(declared: number | undefined, max: number): string {
  return `${declared === undefined ? 'the body' : `a body of ${declared} bytes`} exceeds http_intake.max_body_bytes (${max})`;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The topic the path names: what follows `/ingest/`, percent-decoded. A topic to publish to has no
 * MQTT wildcard (`+`, `#`) and no NUL, as in MQTT.
 */
export function topicOf(path: string): string | { error: string } {
  const raw = path.slice(INGEST_PREFIX.length);
  const usage = 'expected /ingest/<topic>, e.g. /ingest/sensors/barn/temperature';
  if (!path.startsWith(INGEST_PREFIX) || raw === '') return { error: `no topic: ${usage}` };
  let topic: string;
  try {
    topic = decodeURIComponent(raw);
  } catch {
    return { error: `the topic is not well-formed percent-encoded UTF-8: ${usage}` };
  }
  if (/[+#\0]/.test(topic)) return { error: 'a topic to publish to has no + # or NUL' };
  return topic;
}

/** The body, at most `max` bytes, within `timeoutMs`. */
function readBody(
  req: IncomingMessage,
  max: number,
  timeoutMs: number,
): Promise<Uint8Array | 'too_large' | 'timeout' | 'aborted'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (v: Uint8Array | 'too_large' | 'timeout' | 'aborted') => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onAbort).off('close', onClose);
      // Whatever else arrives is not read: the answer closes the connection.
      if (typeof v === 'string') req.pause();
      resolve(v);
    };
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > max) done('too_large');
      else chunks.push(c);
    };
    const onEnd = () => done(Buffer.concat(chunks, size));
    const onAbort = () => done('aborted');
    const onClose = () => {
      if (!req.complete) done('aborted');
    };
    req.on('data', onData).on('end', onEnd).on('error', onAbort).on('close', onClose);
  });
}
