import type { ControlOp, ControlReply, ControlRequest } from '@fieldbeam/protocol';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { withPool } from '../cli/database.js';
import type { CloudConfig } from '../config.js';
import { CloudError, CloudErrorCode } from '../errors.js';
import { identityFiles, listEdges, removeEdge } from '../identity/edge-identity.js';
import { collectorConnectOptions, explainConnectError, identityDir } from '../nats/connection.js';
import { removeEnrollments } from '../provision/enrollment.js';
import { edgeCompleteness } from './completeness.js';
import { DEFAULT_CONTROL_TIMEOUT_MS, requestEdge } from './edge-control.js';
import { FleetStore } from './fleet-store.js';
import {
  type FleetEntry,
  fleetEntries,
  fleetEntry,
  formatCompleteness,
  formatEdgeStatus,
  formatFleetTable,
  neverSeen,
  offlineMessage,
  printable,
} from './fleet-view.js';

/** Exit status of `edge status|rejects|ping|reload` for an edge that is offline or never seen. */
export const EDGE_OFFLINE_EXIT = 3;

type Out = { write(s: string, done?: (err?: Error | null) => void): unknown };

/**
 * Resolves once everything written to `out` so far has left this process: the CLI ends with
 * process.exit, which would otherwise cut a large answer (edge list --json of a big fleet) short
 * when stdout is a pipe.
 */
function flushed(...outs: Out[]): Promise<unknown> {
  return Promise.all(outs.map((out) => new Promise<void>((resolve) => out.write('', () => resolve()))));
}

/** Where the fleet commands read and ask: the collector's settings, and the streams they print to. */
export interface FleetCommandDeps {
  config: CloudConfig;
  out: Out;
  err: Out;
  now?: () => number;
}

/** The ids of the identity registry (`edge add`); none when the folder has no registry yet. */
function registeredIds(config: CloudConfig): string[] {
  return listEdges(identityDir(config)).map((e) => e.id);
}

/** `fieldbeam-cloud edge list`: every edge seen and every registered edge, online or not. */
export async function listFleetCommand(deps: FleetCommandDeps, opts: { json?: boolean }): Promise<number> {
  const registered = registeredIds(deps.config);
  const rows = await withPool(deps.config, (pool) => new FleetStore(pool).list());
  const entries = fleetEntries(rows, registered, (deps.now ?? Date.now)());
  deps.out.write(opts.json ? `${JSON.stringify(entries, null, 2)}\n` : formatFleetTable(entries));
  await flushed(deps.out);
  return 0;
}

/** What the registry knows of one edge, with its last heartbeat; an edge unknown everywhere is an error. */
async function lookUp(deps: FleetCommandDeps, id: string) {
  const registered = registeredIds(deps.config).includes(id);
  const [row, completeness] = await withPool(deps.config, (pool) =>
    Promise.all([new FleetStore(pool).get(id), edgeCompleteness(pool, id)]),
  );
  if (!row && !registered)
    throw new CloudError(
      CloudErrorCode.EDGE_UNKNOWN,
      `${id} is not a registered edge and has never sent a heartbeat (fieldbeam-cloud edge list shows the fleet)`,
      false,
    );
  const entry = row ? fleetEntry(row, registered, (deps.now ?? Date.now)()) : neverSeen(id);
  return { entry, heartbeat: row?.status, completeness };
}

/** Runs `f` on a connection as the collector, found as `run` finds it (NATS_URL, collector.nk). */
async function withNats<T>(config: CloudConfig, f: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connect({ ...collectorConnectOptions(config), reconnect: false, timeout: 5000 }).catch(
    (err: unknown) => {
      throw explainConnectError(err, config);
    },
  );
  try {
    return await f(nc);
  } finally {
    await nc.close();
  }
}

/**
 * Asks an online edge; an offline (or never seen) edge is answered at once from the registry with
 * `EDGE_OFFLINE_EXIT`, no request sent. `show` prints the reply.
 */
async function askEdge<Op extends ControlOp>(
  deps: FleetCommandDeps,
  id: string,
  op: Op,
  body: ControlRequest<Op> | undefined,
  timeoutMs: number,
  show: (reply: ControlReply<Op>, entry: FleetEntry, ms: number) => void,
): Promise<number> {
  const { entry } = await lookUp(deps, id);
  if (!entry.online) {
    deps.err.write(`${offlineMessage(entry)}\n`);
    await flushed(deps.err);
    return EDGE_OFFLINE_EXIT;
  }
  const started = performance.now();
  const reply = await withNats(deps.config, (nc) => requestEdge(nc, id, op, body, { timeoutMs }));
  show(reply, entry, performance.now() - started);
  await flushed(deps.out);
  return 0;
}

/**
 * `fieldbeam-cloud edge status ID`: the edge's own answer when it is online, else what its last
 * heartbeat said and that it is offline (`EDGE_OFFLINE_EXIT`).
 */
export async function edgeStatusCommand(
  deps: FleetCommandDeps,
  id: string,
  opts: { json?: boolean; timeoutMs?: number },
): Promise<number> {
  const { entry, heartbeat, completeness } = await lookUp(deps, id);
  let live: ControlReply<'status'> | undefined;
  if (entry.online) {
    live = await withNats(deps.config, (nc) =>
      requestEdge(nc, id, 'status', undefined, { timeoutMs: opts.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS }),
    );
  }
  if (opts.json) {
    deps.out.write(
      `${JSON.stringify({ ...entry, completeness, heartbeat: heartbeat ?? null, live: live ?? null }, null, 2)}\n`,
    );
  } else {
    deps.out.write(formatEdgeStatus(entry, live ?? heartbeat, live !== undefined));
    deps.out.write(formatCompleteness(completeness));
  }
  if (!entry.online) deps.err.write(`${offlineMessage(entry)}\n`);
  await flushed(deps.out, deps.err);
  return entry.online ? 0 : EDGE_OFFLINE_EXIT;
}

/** `fieldbeam-cloud edge rejects ID`: the inputs the edge could not use, newest first. */
export function edgeRejectsCommand(
  deps: FleetCommandDeps,
  id: string,
  opts: { limit?: number; json?: boolean; timeoutMs?: number },
): Promise<number> {
  return askEdge(
    deps,
    id,
    'rejects',
    opts.limit ? { limit: opts.limit } : undefined,
    opts.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS,
    (reply) => {
      if (opts.json) {
        deps.out.write(`${JSON.stringify(reply.rejects, null, 2)}\n`);
        return;
      }
      if (reply.rejects.length === 0) deps.out.write(`(no rejects kept by ${id})\n`);
      for (const r of reply.rejects) {
        deps.out.write(
          `${r.at}  ${printable(r.source)}  ${printable(r.topic)}\n    ${printable(r.reason)}\n    payload (${r.payloadBytes} bytes${r.truncated ? ', truncated' : ''}): ${printable(JSON.stringify(r.payload))}\n`,
        );
      }
    },
  );
}

/** `fieldbeam-cloud edge ping ID`: whether the edge answers, and how fast. */
export function edgePingCommand(
  deps: FleetCommandDeps,
  id: string,
  opts: { timeoutMs?: number },
): Promise<number> {
  return askEdge(
    deps,
    id,
    'ping',
    undefined,
    opts.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS,
    (reply, _, ms) => {
      deps.out.write(
        `${id} answered in ${Math.round(ms)} ms: version ${printable(reply.version)}, up ${Math.round(reply.uptimeS)} s, clock ${reply.time}\n`,
      );
    },
  );
}

/** `fieldbeam-cloud edge reload ID`: the edge reads its config file again and applies its sensors. */
export function edgeReloadCommand(
  deps: FleetCommandDeps,
  id: string,
  opts: { timeoutMs?: number },
): Promise<number> {
  return askEdge(deps, id, 'reload', undefined, opts.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS, (reply) => {
    const c = reply.changes;
    const list = (what: string, topics: string[]) =>
      topics.length ? `; ${what} ${printable(topics.join(', '))}` : '';
    deps.out.write(
      `${id} reloaded its config: ${reply.sensors} sensors${list('added', c.added)}${list('removed', c.removed)}${list('changed', c.changed)}` +
        `${c.added.length + c.removed.length + c.changed.length === 0 ? ' (no change)' : ''}; ` +
        `auto-registered kept ${reply.autoRegistered.kept}, dropped ${reply.autoRegistered.dropped}\n`,
    );
  });
}

/**
 * `fieldbeam-cloud edge remove ID`: the edge's key leaves the registry and the authorization (it stops
 * working at nats-server's next reload), its unused install links are deleted, and the fleet registry
 * forgets it, so it no longer shows (or alerts) as offline. Central sensor keys stay (`sensors clear`).
 */
export async function removeEdgeCommand(deps: FleetCommandDeps, id: string): Promise<number> {
  const dir = identityDir(deps.config);
  const registered = removeEdge(dir, id);
  const links = removeEnrollments(dir, id);
  const seen = await withPool(deps.config, (pool) => new FleetStore(pool).forget(id));
  if (!registered && !seen) {
    throw new CloudError(
      CloudErrorCode.EDGE_UNKNOWN,
      `${id} is not a registered edge and the fleet registry does not list it (fieldbeam-cloud edge list shows the fleet)`,
      false,
    );
  }
  deps.out.write(
    [
      registered
        ? `edge ${id} removed from ${identityFiles(dir).registry} and ${identityFiles(dir).authorization}: reload nats-server (nats-server --signal reload=<its pid file>), then its key stops working`
        : `edge ${id} was not registered in ${dir}`,
      ...(links > 0 ? [`${links} install link(s) deleted`] : []),
      seen
        ? `the fleet registry forgot ${id} (a new heartbeat would list it again)`
        : `the fleet registry did not list ${id}`,
      `its central sensors, if any, stay in the KV bucket: fieldbeam-cloud sensors clear ${id}`,
      '',
    ].join('\n'),
  );
  await flushed(deps.out);
  return 0;
}
