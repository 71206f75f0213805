import { streams } from '@fieldbeam/protocol';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type pg from 'pg';
import type { CloudConfig } from '../config.js';
import type { DatasetDef } from '../datasets/dataset-config.js';
import type { WindowStore } from '../datasets/window-store.js';
import type { Route } from '../http-api.js';
import type { CloudMetrics } from '../metrics.js';
import { ConsoleSessions } from './console-auth.js';
import { ConsoleData } from './console-data.js';
import { ConsoleLive } from './console-live.js';
import { consoleRoot, consoleRoutes } from './console-routes.js';
import { ConsoleFiles, DEFAULT_CONSOLE_DIR } from './console-static.js';
import { RateRing } from './ingest-health.js';
import { DEFAULT_SSE_LIMITS } from './sse-hub.js';

/** The console settings' defaults (cloud/README.md, "Operator console"). */
export const CONSOLE_DEFAULTS = {
  maxClients: 50,
  maxPerAddress: 4,
  clientBufferBytes: 1024 * 1024,
  pushMs: 2000,
  sessionMs: 8 * 3_600_000,
} as const;

/** Sessions kept at once (each a few dozen bytes; a login beyond ends the oldest). */
const MAX_SESSIONS = 1000;

export interface ConsoleDeps {
  config: CloudConfig;
  pool: pg.Pool;
  nc: NatsConnection;
  jsm: JetStreamManager;
  windows: WindowStore;
  datasets: readonly DatasetDef[];
  metrics: CloudMetrics;
  registered: () => string[];
  log?: { warn(obj: object, msg: string): void };
}

export interface Console {
  routes: Record<string, Route>;
  /** `GET /`: the console for a browser, `json` (the OGC landing page) for everyone else. */
  root(json: Route): Route;
  close(): void;
}

/** The operator console on the collector's HTTP port (cloud/README.md, "Operator console"). */
export function startConsole(deps: ConsoleDeps): Console {
  const { config, pool, metrics } = deps;
  const data = new ConsoleData({
    pool,
    windows: deps.windows,
    datasets: deps.datasets,
    registered: deps.registered,
  });
  const rates = new RateRing(async () => (await metrics.inserted.get()).values[0]?.value ?? 0);
  const ingest = {
    pool,
    rates,
    lag: async () => {
      const info = await deps.jsm.consumers.info(streams.OBS.name, config.FB_INGEST_CONSUMER);
      return { pending: info.num_pending, ackPending: info.num_ack_pending };
    },
  };
  const live = new ConsoleLive({
    data,
    ingest,
    hasDatasets: deps.datasets.length > 0,
    limits: {
      ...DEFAULT_SSE_LIMITS,
      maxClients: config.FB_CONSOLE_MAX_CLIENTS ?? CONSOLE_DEFAULTS.maxClients,
      maxPerAddress: config.FB_CONSOLE_MAX_CLIENTS_PER_ADDRESS ?? CONSOLE_DEFAULTS.maxPerAddress,
      maxQueuedBytes: config.FB_CONSOLE_CLIENT_BUFFER ?? CONSOLE_DEFAULTS.clientBufferBytes,
    },
    pushMs: config.FB_CONSOLE_PUSH_MS ?? CONSOLE_DEFAULTS.pushMs,
    onClients: ({ clients, dropped }) => {
      metrics.consoleClients.set(clients);
      if (dropped) metrics.consoleDropped.inc({ reason: dropped });
    },
    ...(deps.log ? { log: deps.log } : {}),
  });
  // Rates need samples whether or not a page is open; only this timer takes them (see RateRing).
  const sample = () => void rates.sample().catch(() => {});
  const sampler = setInterval(sample, rates.everyMs);
  sampler.unref();
  sample();
  const files = new ConsoleFiles(config.FB_CONSOLE_DIR ?? DEFAULT_CONSOLE_DIR);
  const sessions = new ConsoleSessions(config.FB_ADMIN_TOKEN, {
    ttlMs: config.FB_CONSOLE_SESSION_MS ?? CONSOLE_DEFAULTS.sessionMs,
    maxSessions: MAX_SESSIONS,
  });
  return {
    routes: consoleRoutes({
      data,
      sessions,
      files,
      live,
      nc: deps.nc,
      windows: deps.windows,
      datasets: deps.datasets,
      ingest,
    }),
    root: (json) => consoleRoot(files, json),
    close: () => {
      clearInterval(sampler);
      live.close();
    },
  };
}
