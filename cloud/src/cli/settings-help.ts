import { CloudConfigSchema } from '../config.js';
import { DEFAULT_RETENTION, streamSettingDefaults } from '../retention/retention-settings.js';

const STREAM_DEFAULTS = streamSettingDefaults();

/**
 * Default and meaning of the collector's settings, as `--help` shows them (cloud/README.md has the
 * long form). Which settings exist is the schema's say: one missing here is still listed, pointing
 * to the README; a default the schema declares wins over the one written here.
 */
const SETTINGS: Readonly<Record<string, readonly [defaultValue: string, meaning: string]>> = {
  NATS_URL: ['', 'comma-separated NATS servers'],
  FB_STREAM_REPLICAS: ['1', 'replicas of each stream (3 on a 3-node NATS cluster)'],
  NATS_USER: ['-', 'NATS user (when no nkey is used)'],
  NATS_PASS: ['-', 'password of NATS_USER'],
  NATS_NKEY_SEED_FILE: ['$FB_IDENTITY_DIR/collector.nk', "the collector's nkey seed (made by edge add)"],
  FB_IDENTITY_DIR: ['$FB_DATA_DIR/identity', 'edges.json, nats-authorization.conf, collector.nk'],
  DATABASE_URL: ['-', 'any PostgreSQL; unset: an embedded Postgres in $FB_DATA_DIR/postgres'],
  FB_DATA_DIR: ['', "the collector's data folder"],
  FB_EMBEDDED_PG_PORT: ['', 'loopback port of the embedded Postgres'],
  FB_HTTP_HOST: ['', 'HTTP address: read API, /healthz, /metrics'],
  FB_HTTP_PORT: ['', 'HTTP port'],
  FB_HTTP_ALLOWED_HOSTS: ['-', 'more Host names answered (DNS rebinding guard; * for any)'],
  FB_INGEST_CONSUMER: ['', 'durable consumer name; collectors sharing it share the work'],
  FB_INGEST_FETCH: ['', 'batches fetched and committed per transaction'],
  FB_INGEST_PARALLEL: ['2', 'ingest transactions committing at once'],
  FB_INGEST_DECODE_THREADS: ['2', 'threads decoding and encoding batches beside the main thread (0: on it)'],
  FB_INGEST_MAX_AGE: ['P366D', 'oldest observation time accepted (ISO-8601 duration back from now)'],
  FB_INGEST_MAX_FUTURE: ['PT1H', 'how far ahead of the clock an observation time may be'],
  FB_OBS_MAX_BYTES: [STREAM_DEFAULTS.FB_OBS_MAX_BYTES ?? '', 'size of the FB_OBS stream'],
  FB_OBS_MAX_AGE: [STREAM_DEFAULTS.FB_OBS_MAX_AGE ?? '', 'age at which FB_OBS drops a reading'],
  FB_EVENTS_MAX_BYTES: [STREAM_DEFAULTS.FB_EVENTS_MAX_BYTES ?? '', 'size of the FB_EVENTS stream'],
  FB_EVENTS_MAX_AGE: [STREAM_DEFAULTS.FB_EVENTS_MAX_AGE ?? '', 'age limit of FB_EVENTS'],
  FB_DATASETS_MAX_BYTES: [STREAM_DEFAULTS.FB_DATASETS_MAX_BYTES ?? '', 'size of the FB_DATASETS stream'],
  FB_DATASETS_MAX_AGE: [STREAM_DEFAULTS.FB_DATASETS_MAX_AGE ?? '', 'age limit of FB_DATASETS'],
  FB_STATUS_MAX_BYTES: [STREAM_DEFAULTS.FB_STATUS_MAX_BYTES ?? '', 'size of the FB_STATUS stream'],
  FB_STATUS_MAX_AGE: [STREAM_DEFAULTS.FB_STATUS_MAX_AGE ?? '', 'age limit of FB_STATUS (heartbeats)'],
  FB_RETAIN_WINDOW_MARKS: [
    DEFAULT_RETENTION.windowMarks,
    'how long the window audit (window_marks, ingest_batches) is kept',
  ],
  FB_RETAIN_DATASET_BUILDS: [
    DEFAULT_RETENTION.datasetBuilds,
    'how long build attempts (dataset_builds) are kept',
  ],
  FB_RETAIN_DEAD_LETTERS: [DEFAULT_RETENTION.deadLetters, 'how long dead letters are kept'],
  FB_RETENTION_EVERY: [DEFAULT_RETENTION.every, 'how often one collector prunes those tables'],
  LOG_LEVEL: ['', 'pino level: trace, debug, info, warn, error, fatal'],
  LOG_FORMAT: [
    '-',
    'json, journal or pretty; unset: journal under systemd, pretty on a terminal, json otherwise',
  ],
  FB_DATASETS_FILE: ['-', 'datasets YAML; unset: ingest only'],
  FB_OBJECT_STORE: ['folder', 'where datasets go: folder or s3'],
  FB_OBJECT_DIR: ['$FB_DATA_DIR/objects', 'root of the folder store'],
  FB_S3_BUCKET: ['-', 'bucket (required for s3)'],
  FB_S3_PREFIX: ['-', 'key prefix'],
  FB_S3_ENDPOINT: ['-', 'S3-compatible endpoint (unset for AWS)'],
  FB_S3_REGION: ['us-east-1', 'S3 region'],
  FB_S3_FORCE_PATH_STYLE: ['true with an endpoint', 'path-style URLs'],
  FB_S3_ACCESS_KEY_ID: ['-', "static credentials; unset: the SDK's chain"],
  FB_S3_SECRET_ACCESS_KEY: ['-', 'secret of FB_S3_ACCESS_KEY_ID'],
  FB_BUILD_POLL_MS: ['1000', 'how often the builder looks for due windows'],
  FB_BUILD_LEASE_MS: ['60000', "build lease; a dead builder's window is claimable again after it"],
  FB_BUILD_MAX_ATTEMPTS: ['20', "tries of a window's build before a lasting failure is dead-lettered"],
  FB_BUILD_RETRY_MS: ['1000', "wait before a failed build's first retry, doubling"],
  FB_COORDINATOR_CONSUMER: ['datasets', "prefix of the coordinator's and exporters' consumers"],
  FB_EXPORTERS: ['geoparquet,api', 'exporters to run'],
  FB_EXPORT_MAX_DELIVER: ['20', 'deliveries of a version to an exporter before it is dead-lettered'],
  FB_EXPORT_RETRY_MS: ['2000', "wait before an exporter's first retry, doubling"],
  FB_API_MAX_LIMIT: ['10000', 'largest page of the read API'],
  FB_COLLECTOR_ID: ['host:pid:random', 'this process in leases and build records'],
  FB_RELEASES_DIR: ['-', 'folder served at /edge/releases/ (edge add --url takes its release.json)'],
  FB_ADMIN_TOKEN: [
    '-',
    'bearer token of /admin/... and the console login (24+ characters); unset: 403, console read-only',
  ],
  FB_CONSOLE_MAX_CLIENTS: ['50', "browsers on the console's live updates at once; one more gets 503"],
  FB_CONSOLE_MAX_CLIENTS_PER_ADDRESS: ['4', 'live-update streams from one client address; admins aside'],
  FB_CONSOLE_CLIENT_BUFFER: ['1048576', 'bytes a live-update client may leave unread before it is dropped'],
  FB_CONSOLE_PUSH_MS: ['2000', 'how often live updates look for changes'],
  FB_CONSOLE_SESSION_MS: ['28800000', 'how long a console login lasts'],
  FB_CONSOLE_DIR: ['cloud/dist/console-app', "the console's built browser app"],
};

/** Every setting the collector reads, in the schema's order. */
export const settingNames: readonly string[] = Object.keys(CloudConfigSchema.shape);

/** Names in the table above that are no setting (a renamed or removed one); tests keep it empty. */
export const unknownSettingsInHelp = (): string[] =>
  Object.keys(SETTINGS).filter((name) => !settingNames.includes(name));

function defaultOf(name: string): string {
  const field = (
    CloudConfigSchema.shape as Record<string, { def: { type: string; defaultValue?: unknown } }>
  )[name];
  if (field?.def.type === 'default') return String(field.def.defaultValue);
  return SETTINGS[name]?.[0] || '-';
}

/**
 * The "Environment" part of a command's help: each setting with its meaning and default, `names`
 * (default: all) in the schema's order, wrapped to `width` columns.
 */
export function settingsHelp(names: readonly string[] = settingNames, width = 100): string {
  const shown = settingNames.filter((n) => names.includes(n));
  const indent = Math.max(...shown.map((n) => n.length)) + 4;
  const lines = shown.map((n) => {
    const d = defaultOf(n);
    // The default stays on one line, as `(default: X)`, so it reads (and greps) as one piece.
    const words = [
      ...(SETTINGS[n]?.[1] ?? 'see cloud/README.md').split(' '),
      ...(d === '-' ? [] : [`(default: ${d})`]),
    ];
    return `  ${n.padEnd(indent - 2)}${wrap(words, width - indent).join(`\n${' '.repeat(indent)}`)}`;
  });
  return ['', 'Environment (cloud/README.md has every detail):', ...lines].join('\n');
}

function wrap(words: readonly string[], width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of words) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}
