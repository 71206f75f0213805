import {
  ControlErrorStatus,
  type ControlOp,
  type ControlReject,
  type ControlReply,
  controlLimits,
  controlOps,
  controlServiceName,
  type SensorState,
  subjects,
} from '@fieldbeam/protocol';
import { type Service, type ServiceMsg, Svcm } from '@nats-io/services';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { EdgeConfigError } from '../errors.js';
import { DRAIN_BOUND_MS, settlesWithin } from '../forward/close-bound.js';
import type { KeptReject } from '../outbox/outbox.js';
import { ControlRefusal, parseControlRequest } from './control-request.js';
import type { ReloadOutcome } from './reload.js';

/** The agent as its control service sees it. Each call is quick: none waits on I/O but a local read. */
export interface ControlTarget {
  readonly edge: string;
  readonly version: string;
  readonly startedMs: number;
  /** The heartbeat plus what `/healthz` adds. */
  status(): Record<string, unknown>;
  /** Every sensor (configured and auto-registered), and how many there are. */
  sensors(): SensorState[];
  /** The newest kept rejects first, at most `limit` (read from the buffer, which may be on its own thread). */
  rejects(limit: number): Promise<KeptReject[]>;
  /**
   * Reads the config file again and applies its sensors (the SIGHUP path). Throws `EdgeConfigError`
   * when the file is refused; the running sensors stay.
   */
  reload(): ReloadOutcome;
}

export interface ControlServiceOptions {
  log: Logger;
  /** Counts requests by op and outcome (ok, refused, failed). */
  requests?: { inc(labels: { op: string; outcome: string }): void };
  /** Wait before starting the service again after it stopped with an error (default 60 s). */
  restartDelayMs?: number;
}

export interface ControlService {
  /** Resolves once the service is listening (the uplink connected); for tests and logs. */
  readonly started: Promise<void>;
  /** Stops answering. Idempotent. */
  close(): Promise<void>;
}

/** Headers carry one line: the first part of the message, newlines folded. The body has it whole. */
const MAX_HEADER_CHARS = 1000;
const MAX_ERROR_BODY_CHARS = 8000;
/** Replies stay under the server's max_payload (1 MiB by default) with room for headers. */
const MAX_REPLY_BYTES = 512 * 1024;

/**
 * The edge's control service: a NATS service (services API, discoverable under `$SRV`) named
 * `fieldbeam-edge-<id>` with one endpoint per op on `fb.ctl.<id>.<op>`. It starts when the uplink's
 * connection is first made (the client keeps its subscriptions across reconnects) and answers from
 * the agent's memory and buffer file without waiting on ingest. A bad request (too large, not JSON,
 * unknown fields) gets an error reply and changes nothing.
 */
export function startControlService(
  connection: Promise<NatsConnection>,
  target: ControlTarget,
  opts: ControlServiceOptions,
): ControlService {
  const { log } = opts;
  let closed = false;
  let service: Service | undefined;
  let wake: () => void = () => {};
  const closing = new Promise<void>((resolve) => {
    wake = resolve;
  });
  let markStarted: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    markStarted = resolve;
  });

  const run = async () => {
    const nc = await Promise.race([connection, closing.then(() => undefined)]);
    while (nc && !closed && !nc.isClosed()) {
      service = undefined;
      try {
        service = await addService(nc, target, opts);
        log.info(
          { service: controlServiceName(target.edge), subjects: subjects.controlAll(target.edge) },
          'control service listening',
        );
        markStarted();
      } catch (err) {
        log.error({ err: (err as Error).message }, 'control service could not start');
      }
      const stopped = service
        ? await Promise.race([service.stopped, closing.then(() => null)])
        : new Error('not started');
      if (closed || nc.isClosed()) return;
      // A refused subscription (an authorization that predates the control service) stops it.
      log.error(
        { err: stopped instanceof Error ? stopped.message : String(stopped) },
        'control service stopped; starting it again in a minute (regenerate the NATS authorization with a current fieldbeam-cloud if subscriptions are refused)',
      );
      await Promise.race([new Promise((r) => setTimeout(r, opts.restartDelayMs ?? 60_000).unref()), closing]);
    }
  };
  const running = run().catch((err: Error) => log.error({ err: err.message }, 'control service failed'));

  return {
    started,
    async close() {
      if (closed) return;
      closed = true;
      wake();
      // Stopping drains the endpoints' subscriptions, which waits for the server: through a
      // blackholed uplink it would never end. The agent closes the connection after this.
      if (service) await settlesWithin(service.stop(), DRAIN_BOUND_MS);
      await settlesWithin(running, DRAIN_BOUND_MS);
    },
  };
}

async function addService(
  nc: NatsConnection,
  target: ControlTarget,
  opts: ControlServiceOptions,
): Promise<Service> {
  const service = await new Svcm(nc).add({
    name: controlServiceName(target.edge),
    version: semver(target.version),
    description: `Fieldbeam edge ${target.edge}: status, sensors, rejects, reload, ping`,
    metadata: { edge: target.edge },
  });
  for (const op of controlOps) {
    service.addEndpoint(op, {
      subject: subjects.control(target.edge, op),
      handler: (err, msg) => {
        if (err) {
          opts.log.warn({ op, err: err.message }, 'control endpoint error');
          return;
        }
        void answer(op, msg, target, opts);
      },
      metadata: { op },
    });
  }
  return service;
}

/** Answers one request; never rejects (an unexpected failure is an error reply, 500). */
export async function answer(
  op: ControlOp,
  msg: ServiceMsg,
  target: ControlTarget,
  opts: ControlServiceOptions,
): Promise<void> {
  let id: string | undefined;
  try {
    const req = parseControlRequest(op, msg.data);
    id = req.id;
    const reply = {
      edge: target.edge,
      ...(id !== undefined ? { id } : {}),
      ...(await handle(op, req, target)),
    };
    msg.respond(JSON.stringify(reply));
    opts.requests?.inc({ op, outcome: 'ok' });
  } catch (err) {
    const refusal =
      err instanceof ControlRefusal
        ? err
        : err instanceof EdgeConfigError
          ? new ControlRefusal(
              ControlErrorStatus.CONFIG_INVALID,
              `${err.message}\n(the running sensors are kept)`,
            )
          : new ControlRefusal(
              ControlErrorStatus.INTERNAL,
              `the edge failed to answer: ${(err as Error).message}`,
            );
    id ??= refusal.id;
    const refused = refusal.status < 500;
    opts.requests?.inc({ op, outcome: refused ? 'refused' : 'failed' });
    (refused ? opts.log.info : opts.log.warn).call(
      opts.log,
      { op, status: refusal.status, err: refusal.message },
      'control request answered with an error',
    );
    const message = refusal.message.slice(0, MAX_ERROR_BODY_CHARS);
    msg.respondError(
      refusal.status,
      oneLine(message),
      JSON.stringify({
        edge: target.edge,
        ...(id !== undefined ? { id } : {}),
        error: { status: refusal.status, message },
      }),
    );
  }
}

async function handle(
  op: ControlOp,
  req: { id?: string; limit?: number },
  target: ControlTarget,
): Promise<Record<string, unknown>> {
  switch (op) {
    case 'ping':
      return {
        version: target.version,
        uptimeS: Math.round((Date.now() - target.startedMs) / 1000),
        time: new Date().toISOString(),
      } satisfies Omit<ControlReply<'ping'>, 'edge' | 'id'>;
    case 'status':
      return target.status();
    case 'sensors': {
      const all = target.sensors();
      return { count: all.length, sensors: fit(all.slice(0, controlLimits.maxSensors)) };
    }
    case 'rejects':
      return {
        rejects: fit((await target.rejects(req.limit ?? controlLimits.defaultRejects)).map(toControlReject)),
      };
    case 'reload':
      return { ...target.reload() };
  }
}

export function toControlReject(r: KeptReject): ControlReject {
  return {
    at: new Date(r.at_ms).toISOString(),
    source: r.source,
    topic: r.topic,
    reason: r.reason,
    payload: r.payload.toString('utf8'),
    payloadBytes: r.payload_bytes,
    // Only the first buffer.reject_payload_bytes of a payload are kept.
    truncated: r.payload_bytes > r.payload.length,
  };
}

/** The first entries of `list` whose JSON stays within the reply bound (the newest rejects come first). */
export function fit<T>(list: T[], maxBytes = MAX_REPLY_BYTES): T[] {
  let n = list.length;
  while (n > 0 && Buffer.byteLength(JSON.stringify(list.slice(0, n))) > maxBytes) n = Math.floor(n / 2);
  return list.slice(0, n);
}

function oneLine(s: string): string {
  const line = s.replace(/\s*[\r\n]+\s*/g, '; ');
  return line.length > MAX_HEADER_CHARS ? `${line.slice(0, MAX_HEADER_CHARS)}…` : line;
}

/** The services API wants a semantic version; a build stamp that is not one is reported as 0.0.0. */
function semver(v: string): string {
  return /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/.test(v) ? v : '0.0.0';
}
