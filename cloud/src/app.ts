import { join } from 'node:path';
import { streams } from '@fieldbeam/protocol';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import type { Logger } from 'pino';
import type { CloudConfig } from './config.js';
import { startEmbeddedPostgres } from './db/embedded-postgres.js';
import { migrate } from './db/migrations.js';
import { sendJson, startHttpApi } from './http-api.js';
import { startIngest } from './ingest/ingest.js';
import { ObservationStore } from './ingest/observation-store.js';
import { createCloudMetrics } from './metrics.js';
import { ensureStreams } from './nats/streams.js';

export interface Collector {
  readonly httpPort: number;
  readonly databaseUrl: string;
  close(): Promise<void>;
}

/** Starts the collector: database (embedded or given), migrations, streams, ingest, HTTP. */
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
      const dir = join(config.FB_DATA_DIR, 'postgres');
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
    pool.on('error', (err) => log.warn({ err: err.message }, 'idle Postgres connection failed'));
    closers.push(() => pool.end());
    const applied = await migrate(pool);
    if (applied.length > 0) log.info({ applied }, 'schema migrated');

    const nc = await connect({
      servers: config.NATS_URL.split(',').map((s) => s.trim()),
      name: 'fieldbeam-cloud',
      ...(config.NATS_USER ? { user: config.NATS_USER, pass: config.NATS_PASS ?? '' } : {}),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
    });
    closers.push(async () => {
      await nc.drain().catch(() => nc.close());
    });
    const jsm = await jetstreamManager(nc);
    const specs = Object.values(streams).map((s) =>
      s.name === streams.OBS.name && config.FB_OBS_MAX_BYTES
        ? { ...s, maxBytes: config.FB_OBS_MAX_BYTES }
        : s,
    );
    await ensureStreams(jsm, specs);
    const js = jetstream(nc);

    const metrics = createCloudMetrics();
    const store = new ObservationStore(pool);
    const ingest = await startIngest(
      { js, jsm, store, log, metrics },
      { consumer: config.FB_INGEST_CONSUMER, fetch: config.FB_INGEST_FETCH },
    );
    closers.push(() => ingest.close());

    const http = await startHttpApi(
      { host: config.FB_HTTP_HOST, port: config.FB_HTTP_PORT },
      {
        '/healthz': async (_req, res) => {
          let database = 'ok';
          try {
            await pool.query('SELECT 1');
          } catch (err) {
            database = (err as Error).message;
          }
          const nats = nc.isClosed() ? 'closed' : 'ok';
          const ok = database === 'ok' && nats === 'ok';
          sendJson(res, ok ? 200 : 503, { ok, database, nats });
        },
        '/metrics': async (_req, res) => {
          res
            .writeHead(200, { 'content-type': metrics.registry.contentType })
            .end(await metrics.registry.metrics());
        },
        '/api/stats': async (_req, res) => {
          sendJson(res, 200, { observations: await store.count() });
        },
      },
    );
    closers.push(() => http.close());
    log.info({ httpPort: http.port }, 'collector running');

    let closing: Promise<void> | undefined;
    return {
      httpPort: http.port,
      databaseUrl,
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
