import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { buildInfo } from './build-info.js';

/**
 * The collector's Prometheus metrics, on a registry of its own. Its own are named `fb_cloud_*`; Node's
 * and the process's keep their standard names (`process_cpu_seconds_total`, ...) for stock dashboards.
 */
export function createCloudMetrics(build = buildInfo()) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: 'fb_cloud_build_info',
    help: 'Always 1; labels say what runs: version, commit (FB_BUILD_COMMIT or a BUILDINFO.json stamp), node',
    labelNames: ['version', 'commit', 'node'],
    registers: [registry],
  }).set(build, 1);
  return {
    registry,
    observations: new Counter({
      name: 'fb_cloud_ingest_observations_total',
      help: 'Observations received in valid batches',
      registers: [registry],
    }),
    inserted: new Counter({
      name: 'fb_cloud_ingest_inserted_total',
      help: 'Observations new to Postgres (the rest were replays)',
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: 'fb_cloud_ingest_dead_letters_total',
      help: 'Messages and observations set aside in the dead_letters table, by reason (message, schema, text, time_invalid, time_range, id_mismatch, database, decode)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    ingestErrors: new Counter({
      name: 'fb_cloud_ingest_errors_total',
      help: 'Ingest rounds that failed to commit and were redelivered',
      registers: [registry],
    }),
    ingestRounds: new Counter({
      name: 'fb_cloud_ingest_rounds_total',
      help: 'Ingest transactions by path: fresh (plain COPY), replay (staged, ON CONFLICT), isolated (Postgres refused some data, set aside)',
      labelNames: ['path'],
      registers: [registry],
    }),
    ingestCommitSeconds: new Histogram({
      name: 'fb_cloud_ingest_commit_seconds',
      help: 'Time to commit one ingest round to Postgres',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    consumerPending: new Gauge({
      name: 'fb_cloud_consumer_pending_messages',
      help: 'Messages a durable consumer has not yet acknowledged (lag behind its stream)',
      labelNames: ['stream', 'consumer'],
      registers: [registry],
    }),
    retentionPruned: new Counter({
      name: 'fb_cloud_retention_pruned_rows_total',
      help: 'Rows deleted past their retention, by table (window_marks, dataset_builds, dead_letters)',
      labelNames: ['table'],
      registers: [registry],
    }),
    retentionRounds: new Counter({
      name: 'fb_cloud_retention_rounds_total',
      help: 'Pruning rounds by outcome: pruned, skipped (another collector holds the lock), failed',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    windowMarks: new Counter({
      name: 'fb_cloud_coordinator_marks_total',
      help: 'Dataset windows marked dirty by new data',
      labelNames: ['dataset'],
      registers: [registry],
    }),
    windows: new Gauge({
      name: 'fb_cloud_dataset_windows',
      help: 'Dataset windows by state (building, due, waiting, built, failed)',
      labelNames: ['dataset', 'state'],
      registers: [registry],
    }),
    builds: new Counter({
      name: 'fb_cloud_builds_total',
      help: 'Window builds by outcome (built, superseded, failed)',
      labelNames: ['dataset', 'outcome'],
      registers: [registry],
    }),
    buildSeconds: new Histogram({
      name: 'fb_cloud_build_duration_seconds',
      help: 'Time to build one window (query, Arrow, store)',
      labelNames: ['dataset'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers: [registry],
    }),
    buildRows: new Counter({
      name: 'fb_cloud_build_rows_total',
      help: 'Rows written into dataset objects',
      labelNames: ['dataset'],
      registers: [registry],
    }),
    exports: new Counter({
      name: 'fb_cloud_exports_total',
      help: 'Dataset versions handled by an exporter, by outcome (exported, skipped, failed)',
      labelNames: ['exporter', 'outcome'],
      registers: [registry],
    }),
    exportFailures: new Counter({
      name: 'fb_cloud_export_failures_total',
      help: 'Failed tries of an exporter on a dataset version, by error code and whether a retry can help',
      labelNames: ['exporter', 'code', 'retryable'],
      registers: [registry],
    }),
    buildFailures: new Counter({
      name: 'fb_cloud_build_failures_total',
      help: 'Failed window builds, by error code and whether a retry can help',
      labelNames: ['dataset', 'code', 'retryable'],
      registers: [registry],
    }),
    datasetDeadLetters: new Counter({
      name: 'fb_cloud_datasets_dead_letters_total',
      help: 'Dataset versions (exporters) and windows (builder) given up and set aside in dead_letters, by source and code',
      labelNames: ['source', 'code'],
      registers: [registry],
    }),
    exportSeconds: new Histogram({
      name: 'fb_cloud_export_duration_seconds',
      help: 'Time an exporter took for one dataset version',
      labelNames: ['exporter'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    }),
    fleetHeartbeats: new Counter({
      name: 'fb_cloud_fleet_heartbeats_total',
      help: 'Edge heartbeats recorded in the fleet registry',
      registers: [registry],
    }),
    fleetHeartbeatsRefused: new Counter({
      name: 'fb_cloud_fleet_heartbeats_refused_total',
      help: 'Edge heartbeats set aside in dead_letters (source fleet), by reason (subject, too_large, json, schema, edge_mismatch, database)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    fleetEdges: new Gauge({
      name: 'fb_cloud_fleet_edges',
      help: 'Edges of the fleet registry by state (online, offline)',
      labelNames: ['state'],
      registers: [registry],
    }),
    edgeOnline: new Gauge({
      name: 'fb_cloud_edge_online',
      help: '1 while the edge heartbeats, 0 once it missed 3 heartbeats in a row (one series per edge seen)',
      labelNames: ['edge'],
      registers: [registry],
    }),
    edgeLastSeenAge: new Gauge({
      name: 'fb_cloud_edge_last_seen_age_seconds',
      help: "Time since the edge's latest heartbeat reached the stream",
      labelNames: ['edge'],
      registers: [registry],
    }),
    edgeBufferDepth: new Gauge({
      name: 'fb_cloud_edge_buffer_depth',
      help: "Readings in the edge's buffer not yet acknowledged by the stream, as of its latest heartbeat",
      labelNames: ['edge'],
      registers: [registry],
    }),
    edgeOldestUnsentAge: new Gauge({
      name: 'fb_cloud_edge_oldest_unsent_age_seconds',
      help: "Age of the oldest reading in the edge's buffer (0: empty), as of its latest heartbeat",
      labelNames: ['edge'],
      registers: [registry],
    }),
    edgeEnrollments: new Counter({
      name: 'fb_cloud_edge_enrollments_total',
      help: 'Requests for edge install links (GET /edge/install/<token>), by outcome: redeemed, or refused as unknown, used, expired, damaged, no_release',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    edgeUnexplainedGaps: new Gauge({
      name: 'fb_cloud_edge_unexplained_gap_readings',
      help: 'Per edge: readings its buffers sent that never arrived and that the edge did not explain (drop_oldest); should be 0 (alert when it stays above)',
      labelNames: ['edge'],
      registers: [registry],
    }),
    consoleClients: new Gauge({
      name: 'fb_cloud_console_clients',
      help: "Browsers connected to the console's live updates (/console/events)",
      registers: [registry],
    }),
    consoleDropped: new Counter({
      name: 'fb_cloud_console_clients_dropped_total',
      help: 'Live-update clients dropped, by reason: slow (unsent bytes over FB_CONSOLE_CLIENT_BUFFER), full (FB_CONSOLE_MAX_CLIENTS reached; answered 503), address (FB_CONSOLE_MAX_CLIENTS_PER_ADDRESS reached; 503), evicted (ended to make room for a logged-in admin)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    httpErrors: new Counter({
      name: 'fb_cloud_http_errors_total',
      help: 'HTTP answers with a 4xx or 5xx status, malformed requests included, by status',
      labelNames: ['status'],
      registers: [registry],
    }),
  };
}
export type CloudMetrics = ReturnType<typeof createCloudMetrics>;
