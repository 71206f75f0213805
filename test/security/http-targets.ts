import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CollectorProcess,
  type EdgeAgentProcess,
  startCollectorProcess,
  startEdgeAgentProcess,
  startNatsServer,
  startPostgres,
  tempDir,
} from '../harness/index.js';

/**
 * Every route of the collector started here, with path parameters filled (the dataset is `minutely`),
 * for the fuzz and probe tests: a route added to the collector belongs here so that they reach it.
 */
export const COLLECTOR_ROUTES: readonly string[] = [
  '/',
  '/api',
  '/healthz',
  '/metrics',
  '/conformance',
  '/collections',
  '/collections/minutely',
  '/collections/minutely/items',
  `/collections/minutely/items/1764892800000_${'a'.repeat(64)}_gw-1`,
  '/collections/minutely/position',
  '/collections/minutely/locations',
  '/collections/minutely/locations/st-1',
  '/collections/minutely/windows',
  '/collections/minutely/windows/2026-01-01T00:00:00Z',
  '/collections/minutely/windows/2026-01-01T00:00:00Z/1.parquet',
  '/collections/minutely_agg/items',
  `/collections/minutely_agg/items/1764892800000_${'b'.repeat(32)}`,
  '/collections/minutely_agg/position',
  '/collections/minutely_agg/locations',
  '/collections/minutely_agg/locations/st-1',
  '/collections/nope/items',
  '/edge/releases/release.json',
  '/edge/releases/..',
  '/admin/dead-letters',
  '/admin/datasets/minutely/rebuild',
  '/api/stats',
  // The operator console: its app, API, login (its live-update stream is probed in console-probes.test.ts:
  // it stays open, which a generated request would wait out).
  '/console',
  '/console/',
  '/console/index.html',
  '/console/edges/gw-1',
  '/console/..',
  '/console/api/session',
  '/console/api/fleet',
  '/console/api/edges/gw-1',
  '/console/api/edges/gw-1/rejects',
  '/console/api/edges/gw-1/series',
  '/console/api/edges/gw-1/sensors',
  '/console/api/datasets',
  '/console/api/datasets/minutely/windows/2026-01-01T00:00:00Z/rebuild',
  '/console/api/iss',
  '/console/api/ingest',
  '/console/login',
  '/console/logout',
];

/** The admin token of the collector started here, so generated requests can reach those routes too. */
export const ADMIN_TOKEN = 'http-admin-token-0123456789abcdef';

export interface HttpTargets {
  /**
   * `fieldbeam-cloud run` with two datasets (`minutely`, raw, and `minutely_agg`, aggregated), admin
   * routes on and a releases folder.
   */
  collector: CollectorProcess;
  /** `fieldbeam-edge run` with no sensors. */
  edge: EdgeAgentProcess;
  close(): Promise<void>;
}

/** A collector and an edge agent, each its own OS process, with the servers they need, on loopback. */
export async function startHttpTargets(name: string): Promise<HttpTargets> {
  const [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  const dir = tempDir(`fieldbeam-${name}-`);
  const datasetsFile = join(dir.path, 'datasets.yaml');
  writeFileSync(
    datasetsFile,
    'datasets:\n  - name: minutely\n    window: PT1M\n' +
      '  - name: minutely_agg\n    window: PT1M\n    aggregate: { every: PT10S, stats: [mean, count, first] }\n',
  );
  const [collector, edge] = await Promise.all([
    startCollectorProcess({
      name,
      natsUrl: nats.url,
      databaseUrl: postgres.url,
      dataDir: join(dir.path, 'collector'),
      env: {
        FB_DATASETS_FILE: datasetsFile,
        FB_BUILD_POLL_MS: '600000',
        FB_ADMIN_TOKEN: ADMIN_TOKEN,
        FB_RELEASES_DIR: dir.path,
      },
    }),
    startEdgeAgentProcess({
      dir: dir.path,
      config: { edge: `gw-${name}`, nats: { servers: [nats.url] }, sensors: [] },
    }),
  ]);
  return {
    collector,
    edge,
    close: async () => {
      await Promise.all([collector.stop(), edge.stop()]);
      await Promise.all([nats.close(), postgres.close()]);
      dir.remove();
    },
  };
}
