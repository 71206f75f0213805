import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CollectorProcess,
  type EdgeAgentProcess,
  type NatsServer,
  repoRoot,
  startCollectorProcess,
  startEdgeAgentProcess,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
} from '../harness/index.js';
import { dashboardExpressions, isExposed, metricFamilies, promqlMetricNames } from './promql-names.js';

/**
 * The Grafana dashboards in deploy/grafana query only metrics that a real agent and a real collector
 * expose: every metric name in every PromQL expression (panels and variables) is a family in a
 * `/metrics` scrape (a histogram's _bucket, _sum and _count count as its family).
 */
const GRAFANA = join(repoRoot(), 'deploy/grafana');
const dashboard = (file: string) => JSON.parse(readFileSync(join(GRAFANA, file), 'utf8')) as unknown;
const queried = (file: string) =>
  [...new Set(dashboardExpressions(dashboard(file)).flatMap(promqlMetricNames))].sort();

describe('reading metric names out of PromQL', () => {
  it('finds the metrics and leaves functions, labels, ranges, variables and numbers out', () => {
    expect(
      promqlMetricNames(
        'histogram_quantile(0.99, sum by (instance, le) (rate(fb_cloud_ingest_commit_seconds_bucket{instance=~"$instance", x="a b"}[$__rate_interval])))',
      ),
    ).toEqual(['fb_cloud_ingest_commit_seconds_bucket']);
    expect(promqlMetricNames('time() - process_start_time_seconds{job="x"} > 1e3 offset 5m')).toEqual([
      'process_start_time_seconds',
    ]);
    expect(promqlMetricNames('a_total / on (instance) group_left (version) b_info')).toEqual([
      'a_total',
      'b_info',
    ]);
    expect(promqlMetricNames('label_values(fb_edge_build_info, instance)')).toEqual(['fb_edge_build_info']);
    expect(promqlMetricNames('label_values(instance)')).toEqual([]);
  });

  it('counts histogram parts as their family, and nothing else', () => {
    const families = new Map([
      ['h_seconds', 'histogram'],
      ['c_total', 'counter'],
    ]);
    expect(isExposed('h_seconds_bucket', families)).toBe(true);
    expect(isExposed('h_seconds_count', families)).toBe(true);
    expect(isExposed('c_total', families)).toBe(true);
    expect(isExposed('c_total_sum', families)).toBe(false);
    expect(isExposed('missing_total', families)).toBe(false);
  });
});

describe('the Grafana dashboards against real scrapes', () => {
  let dir: TempDir;
  let nats: NatsServer;
  let postgres: TestPostgres;
  let agent: EdgeAgentProcess;
  let collector: CollectorProcess;

  beforeAll(async () => {
    dir = tempDir();
    nats = await startNatsServer();
    postgres = await startPostgres();
    collector = await startCollectorProcess({
      name: 'dash-collector',
      natsUrl: nats.url,
      databaseUrl: postgres.url,
      dataDir: join(dir.path, 'collector'),
      env: { FB_BUILD_COMMIT: 'c0ffee1' },
    });
    agent = await startEdgeAgentProcess({
      dir: dir.path,
      config: {
        edge: 'gw-dash',
        nats: { servers: [nats.url] },
        sensors: [
          { topic: 's/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
        ],
      },
    });
  });

  afterAll(async () => {
    await agent?.stop();
    await collector?.stop();
    await postgres?.close();
    await nats?.close();
    dir?.remove();
  });

  const scrape = async (url: string) => (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();

  it('there is one dashboard for the edge and one for the collector', () => {
    expect(
      readdirSync(GRAFANA)
        .filter((f) => f.endsWith('.json'))
        .sort(),
    ).toEqual(['fieldbeam-collector.json', 'fieldbeam-edge.json']);
  });

  it('every metric the edge dashboard queries is in a running agent’s /metrics', async () => {
    const names = queried('fieldbeam-edge.json');
    // The panels the dashboard exists for.
    expect(names).toEqual(
      expect.arrayContaining([
        'fb_edge_buffer_oldest_unsent_age_seconds',
        'fb_edge_buffer_depth',
        'fb_edge_uplink_connected',
        'fb_edge_rejected_total',
        'fb_edge_http_refused_total',
        'fb_edge_build_info',
        'process_cpu_seconds_total',
        'process_resident_memory_bytes',
      ]),
    );
    const text = await scrape(`http://${agent.host}:${agent.httpPort}/metrics`);
    const families = metricFamilies(text);
    expect(names.filter((n) => !isExposed(n, families))).toEqual([]);
    expect(text).toMatch(
      /^fb_edge_build_info\{version="\d+\.\d+\.\d+[^"]*",commit="[^"]+",node="v\d+[^"]*"\} 1$/m,
    );
  });

  it('every metric the collector dashboard queries is in a running collector’s /metrics', async () => {
    const names = queried('fieldbeam-collector.json');
    expect(names).toEqual(
      expect.arrayContaining([
        'fb_cloud_ingest_observations_total',
        'fb_cloud_ingest_dead_letters_total',
        'fb_cloud_ingest_commit_seconds_bucket',
        'fb_cloud_http_errors_total',
        'fb_cloud_build_info',
        'process_cpu_seconds_total',
      ]),
    );
    const text = await scrape(`http://127.0.0.1:${collector.httpPort}/metrics`);
    const families = metricFamilies(text);
    expect(names.filter((n) => !isExposed(n, families))).toEqual([]);
    expect(text).toContain(
      `fb_cloud_build_info{version="0.1.0",commit="c0ffee1",node="${process.version}"} 1`,
    );
  });
});
