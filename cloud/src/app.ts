import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { parseDuration, streams } from '@fieldbeam/protocol';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import type { Logger } from 'pino';
import { adminRoutes } from './admin/admin-routes.js';
import { hostAllowList } from './allowed-hosts.js';
import { ogcApiRoutes } from './api/ogc-api.js';
import type { CloudConfig } from './config.js';
import { startConsole } from './console/console.js';
import { type Builder, startBuilder } from './datasets/builder.js';
import { startCoordinator } from './datasets/coordinator.js';
import { loadDatasets } from './datasets/dataset-config.js';
import { WindowStore } from './datasets/window-store.js';
import { embeddedPostgresDir, startEmbeddedPostgres } from './db/embedded-postgres.js';
import { migrate } from './db/migrations.js';
import { DEFAULT_EXPORT_RETRY, type ExporterName, startExporters } from './export/exporters.js';
import { ensureSensorBucket } from './fleet/central-sensors.js';
import { startCompleteness } from './fleet/completeness.js';
import { refreshFleetGauges, startFleetRegistry } from './fleet/fleet-registry.js';
import { type Route, sendJson, startHttpApi } from './http-api.js';
import { authorizationIsCurrent, listEdges } from './identity/edge-identity.js';
import { DEFAULT_ACCEPTED_TIME, startIngest } from './ingest/ingest.js';
import { ObservationStore } from './ingest/observation-store.js';
import { createCloudMetrics } from './metrics.js';
import { collectorConnectOptions, explainConnectError, identityDir } from './nats/connection.js';
import type { DurableConsumer } from './nats/durable-consumer.js';
import { ensureStreams } from './nats/streams.js';
import { enrollRoutes } from './provision/enroll-route.js';
import { releaseRoutes } from './releases/index.js';
import { startPruner } from './retention/pruner.js';
import { DEFAULT_REPLICAS, retentionOf, streamSpecs } from './retention/retention-settings.js';
import { createObjectStore } from './storage/create-object-store.js';

/**
 * Ends the pool and waits until every connection has really closed: `pool.end()` resolves while its
 * connections are still saying goodbye, and a server stopping right then would make them fail.
 */
async function endPool(pool: pg.Pool): Promise<void> {
  const open = pool.totalCount;
  let removed = 0;
  const gone = new Promise<void>((resolve) => {
    if (open === 0) resolve();
    pool.on('remove', () => {
      if (++removed >= open) resolve();
    });
  });
  await pool.end();
  await Promise.race([gone, new Promise((r) => setTimeout(r, 2000).unref())]);
}

export interface Collector {
  readonly httpPort: number;
  readonly databaseUrl: string;
  /** This process in leases and build records. */
  readonly id: string;
  close(): Promise<void>;
}

/**
 * Starts the collector: database (embedded or given), migrations, streams, ingest, and when datasets
 * are configured the coordinator, builder and exporters; then HTTP (health, metrics, read API).
 * Several collectors may run against one stream and one database: they share every durable consumer
 * and the builder's claims.
 */
export async function createCollector(config: CloudConfig, log: Logger): Promise<Collector> {
  const closers: (() => Promise<void>)[] = [];
  const unwind = async () => {
    for (const close of closers.reverse()) {
      try {
        await close();
      } catch (err) {
        log.error({ err }, 'error while closing');
      }
    }
  };
  try {
    let databaseUrl = config.DATABASE_URL;
    if (!databaseUrl) {
      const dir = embeddedPostgresDir(config.FB_DATA_DIR);
      log.info({ dir, port: config.FB_EMBEDDED_PG_PORT }, 'no DATABASE_URL: starting embedded Postgres');
      const embedded = await startEmbeddedPostgres({
        dir,
        port: config.FB_EMBEDDED_PG_PORT,
        onLog: (line) => log.debug({ pg: line.trim() }, 'postgres'),
      });
      closers.push(() => embedded.stop());
      databaseUrl = embedded.url;
    }
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 8 });
    // A checked-out client whose server goes away (Postgres restart) emits 'error'; without a
    // listener that would end the process. The query in flight fails and its caller retries.
    pool.on('connect', (client) => {
      client.on('error', (err) => log.warn({ err: err.message }, 'Postgres connection lost'));
    });
    pool.on('error', (err) => log.warn({ err: err.message }, 'idle Postgres connection failed'));
    closers.push(() => endPool(pool));
    const applied = await migrate(pool);
    if (applied.length > 0) log.info({ applied }, 'schema migrated');

    // Its own nkey (collector.nk) and inbox prefix: see nats/connection.ts.
    const nc = await connect({
      ...collectorConnectOptions(config),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
    }).catch((err: unknown) => {
      throw explainConnectError(err, config);
    });
    closers.push(async () => {
      await nc.drain().catch(() => nc.close());
    });
    warnIfAuthorizationStale(identityDir(config), log);
    const jsm = await jetstreamManager(nc);
    // The limits in the settings hold for streams made by an earlier start too.
    for (const change of await ensureStreams(jsm, streamSpecs(config))) {
      log.info(change, change.created ? 'stream created' : 'stream limits changed to the settings');
    }
    // Edges read their keys of it from their first connection on (central sensor config).
    await ensureSensorBucket(nc, config.FB_STREAM_REPLICAS ?? DEFAULT_REPLICAS);
    const js = jetstream(nc);

    const metrics = createCloudMetrics();
    const id = config.FB_COLLECTOR_ID ?? `${hostname()}:${process.pid}:${randomBytes(2).toString('hex')}`;
    const datasets = loadDatasets(config.FB_DATASETS_FILE);
    const objects = createObjectStore(config);
    closers.push(() => objects.close());
    const store = new ObservationStore(pool);
    const windows = new WindowStore(pool);
    const completeness = startCompleteness(pool, { log, gauge: metrics.edgeUnexplainedGaps });
    closers.push(() => completeness.close());
    // Bookkeeping rows past their retention, off the hot path, one collector at a time.
    const pruner = startPruner({ pool, log, metrics }, retentionOf(config));
    closers.push(() => pruner.close());
    const ingest = await startIngest(
      { js, jsm, store, log, metrics, completeness },
      {
        consumer: config.FB_INGEST_CONSUMER,
        fetch: config.FB_INGEST_FETCH,
        ...(config.FB_INGEST_PARALLEL ? { parallel: config.FB_INGEST_PARALLEL } : {}),
        ...(config.FB_INGEST_DECODE_THREADS !== undefined
          ? { decodeThreads: config.FB_INGEST_DECODE_THREADS }
          : {}),
        acceptedTime: {
          maxAgeMs: config.FB_INGEST_MAX_AGE
            ? parseDuration(config.FB_INGEST_MAX_AGE)
            : DEFAULT_ACCEPTED_TIME.maxAgeMs,
          maxFutureMs: config.FB_INGEST_MAX_FUTURE
            ? parseDuration(config.FB_INGEST_MAX_FUTURE)
            : DEFAULT_ACCEPTED_TIME.maxFutureMs,
        },
      },
    );
    closers.push(() => ingest.close());

    const consumers: { stream: string; consumer: DurableConsumer }[] = [];
    // The fleet registry: every edge's latest heartbeat, in Postgres (see fleet/fleet-registry.ts).
    const fleet = await startFleetRegistry({ js, jsm, pool, log, metrics });
    closers.push(() => fleet.close());
    consumers.push({ stream: streams.STATUS.name, consumer: fleet });
    const fleetSeries = new Set<string>();
    let builder: Builder | undefined;
    if (datasets.length > 0) {
      log.info({ datasets: datasets.map((d) => d.name), objects: objects.describe }, 'datasets configured');
      const prefix = config.FB_COORDINATOR_CONSUMER ?? 'datasets';
      const names = (config.FB_EXPORTERS ?? 'geoparquet,api')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean) as ExporterName[];
      builder = await startBuilder(
        { pool, windows, store: objects, js, log, metrics },
        {
          datasets,
          owner: id,
          pollMs: config.FB_BUILD_POLL_MS ?? 1000,
          leaseMs: config.FB_BUILD_LEASE_MS ?? 60_000,
          ...(config.FB_BUILD_MAX_ATTEMPTS ? { maxAttempts: config.FB_BUILD_MAX_ATTEMPTS } : {}),
          ...(config.FB_BUILD_RETRY_MS ? { firstRetryMs: config.FB_BUILD_RETRY_MS } : {}),
          // The build writes the GeoParquet from the batches it holds; the exporter then takes it.
          geoParquet: names.includes('geoparquet'),
        },
      );
      const b = builder;
      closers.push(() => b.close());
      const coordinator = await startCoordinator(
        { js, jsm, pool, windows, log, metrics, onMarked: () => b.wake() },
        { datasets, durable: `${prefix}-coordinator` },
      );
      closers.push(() => coordinator.close());
      consumers.push({ stream: streams.EVENTS.name, consumer: coordinator });
      const exporters = await startExporters(
        { js, jsm, pool, store: objects, log, metrics },
        {
          exporters: names,
          durablePrefix: `${prefix}-export`,
          datasets: datasets.map((d) => d.name),
          retry: {
            maxDeliver: config.FB_EXPORT_MAX_DELIVER ?? DEFAULT_EXPORT_RETRY.maxDeliver,
            firstRetryMs: config.FB_EXPORT_RETRY_MS ?? DEFAULT_EXPORT_RETRY.firstRetryMs,
          },
        },
      );
      for (const e of exporters) {
        closers.push(() => e.close());
        consumers.push({ stream: streams.DATASETS.name, consumer: e });
      }
    }

    const refreshGauges = async () => {
      const lag = async (stream: string, consumer: string) => {
        const info = await jsm.consumers.info(stream, consumer);
        metrics.consumerPending.set({ stream, consumer }, info.num_pending + info.num_ack_pending);
      };
      await Promise.allSettled([
        lag(streams.OBS.name, config.FB_INGEST_CONSUMER),
        ...consumers.map((c) => lag(c.stream, c.consumer.name)),
        refreshFleetGauges(pool, metrics, fleetSeries),
      ]);
      if (datasets.length > 0) {
        const counts = await windows.stateCounts();
        for (const d of datasets) {
          for (const state of ['building', 'due', 'waiting', 'built', 'failed'] as const) {
            metrics.windows.set({ dataset: d.name, state }, counts.get(d.name)?.get(state) ?? 0);
          }
        }
      }
    };

    const ogc = ogcApiRoutes({
      pool,
      windows,
      store: objects,
      datasets,
      maxLimit: config.FB_API_MAX_LIMIT ?? 10_000,
    });
    // The operator console: its app, API and live updates (console/console.ts).
    const operatorConsole = startConsole({
      config,
      pool,
      nc,
      jsm,
      windows,
      datasets,
      metrics,
      registered: () => listEdges(identityDir(config)).map((e) => e.id),
      log,
    });
    const http = await startHttpApi(
      {
        host: config.FB_HTTP_HOST,
        port: config.FB_HTTP_PORT,
        log,
        onError: (status) => metrics.httpErrors.inc({ status: String(status) }),
        allowedHost: hostAllowList(config.FB_HTTP_ALLOWED_HOSTS),
        anyHostPaths: ['/edge/'],
      },
      {
        ...ogc,
        '/': operatorConsole.root(ogc['/'] as Route),
        ...operatorConsole.routes,
        ...releaseRoutes({ dir: config.FB_RELEASES_DIR }),
        ...enrollRoutes({
          identityDir: identityDir(config),
          releasesDir: config.FB_RELEASES_DIR,
          log,
          onOutcome: (outcome) => metrics.edgeEnrollments.inc({ outcome }),
        }),
        ...adminRoutes({ pool, windows, datasets, token: config.FB_ADMIN_TOKEN }),
        '/healthz': async ({ res }) => {
          let database = 'ok';
          try {
            await pool.query('SELECT 1');
          } catch (err) {
            // The cause goes to the log, not to an unauthenticated client (it can name hosts and roles).
            database = 'unavailable';
            log.warn({ err: (err as Error).message }, 'healthz: database check failed');
          }
          const nats = nc.isClosed() ? 'closed' : 'ok';
          const ok = database === 'ok' && nats === 'ok';
          sendJson(res, ok ? 200 : 503, { ok, id, database, nats, datasets: datasets.length });
        },
        '/metrics': async ({ res }) => {
          await refreshGauges().catch((err: Error) =>
            log.warn({ err: err.message }, 'metrics refresh failed'),
          );
          res
            .writeHead(200, { 'content-type': metrics.registry.contentType })
            .end(await metrics.registry.metrics());
        },
        '/api/stats': async ({ res }) => {
          sendJson(res, 200, { observations: await store.count() });
        },
      },
    );
    closers.push(() => http.close());
    // Live-update streams end first: the server's close waits for no open response.
    closers.push(async () => operatorConsole.close());
    log.info({ httpPort: http.port }, 'collector running');

    let closing: Promise<void> | undefined;
    return {
      httpPort: http.port,
      databaseUrl,
      id,
      close() {
        closing ??= unwind();
        return closing;
      },
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}

/**
 * After an upgrade, nats-authorization.conf may predate permissions this version's edges use (their
 * control service, their central sensor keys): nats-server would refuse those, so say how to fix it.
 */
function warnIfAuthorizationStale(dir: string, log: Logger): void {
  try {
    if (!authorizationIsCurrent(dir))
      log.warn(
        { dir },
        "nats-authorization.conf lacks this version's edge permissions: run fieldbeam-cloud edge authorize, then reload nats-server",
      );
  } catch (err) {
    log.warn({ dir, err: (err as Error).message }, 'could not check nats-authorization.conf');
  }
}
