import {
  CentralSensorConfig,
  type ConfigState,
  centralSensors,
  describeIssues,
  type SensorState,
  statusLimits,
  subjects,
} from '@fieldbeam/protocol';
import { jetstream } from '@nats-io/jetstream';
import { type KvEntry, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { sensorStates } from '../control/sensor-states.js';
import { DRAIN_BOUND_MS, settlesWithin } from '../forward/close-bound.js';
import type { EdgeMetrics } from '../metrics.js';
import type { AutoRegisterStatus } from '../sources/auto-register.js';
import type { SensorReadingState } from '../sources/sensor-map.js';
import {
  type AppliedCentralConfig,
  type AppliedKey,
  appliedConfigPath,
  readAppliedConfig,
  writeAppliedConfig,
} from './applied-config-file.js';
import { type LocalSensors, type MergedSensors, mergeSensors } from './sensor-merge.js';

export type { LocalSensors, MergedSensors } from './sensor-merge.js';

/** A central value larger than this is refused unread (a sensor list is a few KiB). */
export const MAX_CENTRAL_VALUE_BYTES = 256 * 1024;
const MAX_ERROR_CHARS = 1000;
/** As the edge config's `central_poll_ms` default. */
export const DEFAULT_CENTRAL_POLL_MS = 5000;

type Slot = 'all' | 'own';

export interface CentralSensorsOptions {
  edge: string;
  dataDir: string;
  local: LocalSensors;
  log: Logger;
  metrics: Pick<EdgeMetrics, 'centralConfigRefused' | 'centralConfigRevision'>;
  /** How often both keys are read once connected (`central_poll_ms`); also at every (re)connect. */
  pollMs?: number;
  /** Retry delays of the reads after a failure (no bucket yet, permission, connection lost), in ms. */
  retryMs?: { first: number; max: number };
}

export interface CentralSensors {
  /** The sensors to run with now: at start, the YAML merged with the central config last applied. */
  merged(): MergedSensors;
  /**
   * Reads this edge's two keys of the bucket once the uplink is connected, again at each reconnect
   * and every `pollMs`, and calls `apply` with every new merge (only when a key's revision changed).
   * `apply` must not drop connections (SIGHUP path).
   */
  watch(connection: () => Promise<NatsConnection>, apply: (merged: MergedSensors) => void): void;
  /** The YAML's sensors changed (SIGHUP): merged again with the central config and applied. */
  setLocal(local: LocalSensors): void;
  /** The heartbeat's `config`. */
  configState(): ConfigState;
  /**
   * Every sensor with its origin (local YAML, central, auto) and newest reading: at most `limit`
   * (default `statusLimits.maxSensors`, the heartbeat's bound) and the full count.
   */
  sensorStates(
    configured: readonly SensorReadingState[],
    auto: AutoRegisterStatus,
    limit?: number,
  ): { sensors: SensorState[]; sensorCount: number };
  close(): Promise<void>;
}

/**
 * The central sensor configuration of one edge: keys `edge.<id>` and `all` of the KV bucket
 * `fb_sensors`, validated with the schema of the YAML's sensors, merged with the YAML (see
 * `mergeSensors` for the precedence), applied live and kept in the data folder so that the agent
 * boots with it when NATS is unreachable. The keys are polled with direct gets, not watched: a watch
 * is a consumer, and an edge allowed to create consumers could have the server deliver into any
 * subject (the deliver subject is in the request body, which NATS permissions do not check). An invalid value is refused, counted and reported in the
 * status; the last good config stays applied.
 */
export function createCentralSensors(opts: CentralSensorsOptions): CentralSensors {
  const { edge, log, metrics } = opts;
  const path = appliedConfigPath(opts.dataDir, edge);
  const keys: Record<Slot, string> = { all: centralSensors.allKey, own: centralSensors.edgeKey(edge) };
  const saved = readAppliedConfig(path, edge, (message) =>
    log.error({ file: path }, `central sensor config file ignored: ${message}`),
  );
  const applied: Record<Slot, AppliedKey | null> = { all: saved?.all ?? null, own: saved?.own ?? null };
  let appliedAt: string | null = saved?.appliedAt ?? null;
  const refused: Record<Slot, { revision: number; error: string } | null> = { all: null, own: null };
  let local = opts.local;
  let current = mergeSensors(local, { all: applied.all?.value, own: applied.own?.value });
  let apply: ((merged: MergedSensors) => void) | undefined;
  let closed = false;
  let closedNow = () => {};
  // Settles at close(): the uplink's connection may never come (NATS unreachable), and close must not wait for it.
  const closing = new Promise<undefined>((resolve) => {
    closedNow = () => resolve(undefined);
  });
  let stopWatch = () => {};
  let watching: Promise<void> = Promise.resolve();
  let pending: NodeJS.Immediate | undefined;

  const revision = () => {
    const r = Math.max(applied.all?.revision ?? -1, applied.own?.revision ?? -1);
    return r < 0 ? null : r;
  };
  metrics.centralConfigRevision.set(revision() ?? 0);
  if (saved) {
    log.info(
      { revision: revision(), appliedAt, sensors: current.central.size },
      'central sensor config: starting with the one last applied',
    );
  }

  const applyNow = (cause: 'central' | 'local') => {
    pending = undefined;
    if (closed || !apply) return;
    const merged = mergeSensors(local, { all: applied.all?.value, own: applied.own?.value });
    try {
      apply(merged);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'central sensor config could not be applied');
      return;
    }
    current = merged;
    if (cause === 'central')
      log.info(
        { revision: revision(), sensors: merged.sensors.length, central: merged.central.size },
        'central sensor config applied',
      );
    if (merged.shadowed.length > 0)
      log.info({ shadowed: merged.shadowed }, 'central sensors left out: a local sensor has the same topic');
  };
  const schedule = () => {
    // Both keys arrive together at start and after a reconnect: applied once.
    pending ??= setImmediate(applyNow, 'central');
  };

  const forget = (slot: Slot) => {
    // Never written, or purged from the stream: no central sensors from this key.
    refused[slot] = null;
    if (applied[slot] === null) return;
    applied[slot] = null;
    save(slot, 0, 'central sensor config key gone: no central sensors from it');
  };

  const save = (slot: Slot, sensors: number, message: string) => {
    appliedAt = new Date().toISOString();
    metrics.centralConfigRevision.set(revision() ?? 0);
    log.info({ key: keys[slot], revision: applied[slot]?.revision ?? null, sensors }, message);
    const state: AppliedCentralConfig = { v: 1, edge, appliedAt, all: applied.all, own: applied.own };
    try {
      writeAppliedConfig(path, state);
    } catch (err) {
      log.error(
        { file: path, err: (err as Error).message },
        'central sensor config applied but not saved: a restart without NATS starts with the previous one',
      );
    }
    schedule();
  };

  const accept = (slot: Slot, entry: KvEntry | null) => {
    if (entry === null) return forget(slot);
    // The same refused revision again (read at the next poll): already reported.
    if (refused[slot]?.revision === entry.revision) return;
    const value = parseEntry(entry);
    if (typeof value === 'string') {
      refused[slot] = {
        revision: entry.revision,
        error: `${keys[slot]} revision ${entry.revision}: ${value}`,
      };
      metrics.centralConfigRefused.inc();
      log.error(
        {
          key: keys[slot],
          revision: entry.revision,
          reason: value,
          keeping: applied[slot]?.revision ?? null,
        },
        'central sensor config refused; the last good config stays applied',
      );
      return;
    }
    if (refused[slot] && refused[slot].revision <= entry.revision) refused[slot] = null;
    if (applied[slot]?.revision === entry.revision) return;
    applied[slot] = { revision: entry.revision, value };
    save(slot, value.sensors.length, 'central sensor config received');
  };

  /** Set while waiting for the next poll: ends the wait early (a reconnect, close). */
  let wakeNow = () => {};
  let woken = false;
  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken) return resolve();
      const t = setTimeout(resolve, ms);
      wakeNow = () => {
        clearTimeout(t);
        resolve();
      };
    });
  const wake = () => {
    woken = true;
    wakeNow();
  };

  const pollMs = opts.pollMs ?? DEFAULT_CENTRAL_POLL_MS;
  const pollOnce = async (nc: NatsConnection, read: () => void): Promise<void> => {
    // Requests and replies through this edge's own inbox, the only one its credentials may subscribe to.
    const js = jetstream(nc, { watcherPrefix: subjects.inbox(edge) });
    // Bound without asking the server (an edge may not read the stream's info). With allow_direct a
    // get is `$JS.API.DIRECT.GET.<stream>.<key subject>` with an empty body: the one thing an edge's
    // permissions allow on the bucket, and only for its two keys.
    const kv = await new Kvm(js).open(centralSensors.bucket, { allow_direct: true });
    // Typed as an AsyncIterable; it is nats-core's QueuedIterator, which stop() ends.
    const statuses = nc.status() as AsyncIterable<{ type: string }> & { stop?: () => void };
    void (async () => {
      // After a reconnect both keys are read at once, not at the next poll.
      for await (const s of statuses) if (s.type === 'reconnect') wake();
    })().catch(() => {});
    stopWatch = wake;
    try {
      log.info({ keys: Object.values(keys), poll_ms: pollMs }, 'polling the central sensor config');
      while (!closed) {
        woken = false;
        const slots = ['own', 'all'] as const;
        const reads = Promise.all(slots.map((slot) => kv.get(keys[slot])));
        // Awaited below unless close() came first; then its failure has no one to tell.
        reads.catch(() => {});
        const entries = await Promise.race([reads, closing]);
        if (closed || !entries) return;
        read();
        slots.forEach((slot, i) => {
          accept(slot, entries[i] ?? null);
        });
        await wait(pollMs);
      }
    } finally {
      statuses.stop?.();
    }
  };

  const retry = opts.retryMs ?? { first: 1000, max: 30_000 };
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      stopWatch = () => {
        clearTimeout(t);
        resolve();
      };
    });
  const run = async (connection: () => Promise<NatsConnection>) => {
    let failures = 0;
    let lastProblem = '';
    while (!closed) {
      try {
        const nc = await Promise.race([connection(), closing]);
        if (closed || !nc) return;
        // Returns only at close; a failed read (no bucket, connection lost) throws.
        await pollOnce(nc, () => {
          failures = 0;
          lastProblem = '';
        });
      } catch (err) {
        if (closed) return;
        const problem = (err as Error).message;
        // A lasting cause (no bucket until the collector starts) is logged when it changes, not per retry.
        if (problem !== lastProblem)
          log.warn(
            { err: problem },
            'central sensor config not read (retrying); the collector creates the bucket fb_sensors',
          );
        lastProblem = problem;
        failures++;
        await pause(Math.min(retry.max, retry.first * 2 ** Math.min(failures - 1, 10)));
      }
    }
  };

  return {
    merged: () => current,
    watch(connection, onApply) {
      apply = onApply;
      watching = run(connection);
    },
    setLocal(next) {
      local = next;
      if (pending) clearImmediate(pending);
      applyNow('local');
    },
    configState() {
      const newest = [refused.all, refused.own]
        .filter((r) => r !== null)
        .sort((a, b) => b.revision - a.revision)[0];
      return {
        revision: revision(),
        appliedAt,
        error: newest ? newest.error.slice(0, MAX_ERROR_CHARS) : null,
        refusedRevision: newest?.revision ?? null,
      };
    },
    sensorStates(configured, auto, limit = statusLimits.maxSensors) {
      const last = new Map<string, string | null>();
      for (const c of configured) last.set(c.config.topic, isoOrNull(c.lastReadingMs));
      for (const a of auto.sensors) last.set(a.topic, isoOrNull(a.lastReadingMs));
      const all = sensorStates(
        configured.map((c) => ({
          sensor: c.config,
          origin: current.central.has(c.config) ? ('central' as const) : ('local' as const),
        })),
        auto,
        (topic) => last.get(topic) ?? null,
      );
      return { sensors: all.length > limit ? all.slice(0, limit) : all, sensorCount: all.length };
    },
    async close() {
      closed = true;
      closedNow();
      if (pending) clearImmediate(pending);
      stopWatch();
      // The poll loop ends at once (its reads race `closing`); a step still waiting on the server
      // (opening the bucket) is not awaited past the bound: through a blackholed uplink it would wait
      // for its own timeout.
      await settlesWithin(watching, DRAIN_BOUND_MS);
    },
  };
}

const isoOrNull = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A KV entry as a central config, or why it is refused. A deleted key is an empty config. */
function parseEntry(entry: KvEntry): CentralSensorConfig | string {
  if (entry.operation === 'DEL' || entry.operation === 'PURGE') return { sensors: [] };
  if (entry.length > MAX_CENTRAL_VALUE_BYTES) return `larger than ${MAX_CENTRAL_VALUE_BYTES} bytes`;
  let doc: unknown;
  try {
    doc = JSON.parse(entry.string());
  } catch (err) {
    return `not JSON (${(err as Error).message})`;
  }
  const parsed = CentralSensorConfig.safeParse(doc);
  return parsed.success ? parsed.data : describeIssues(parsed.error.issues);
}
