import { isDuration, LOG_FORMATS, parseDuration } from '@fieldbeam/protocol';
import { z } from 'zod';
import { ALLOWED_HOST_ENTRY } from './allowed-hosts.js';
import { CloudError, CloudErrorCode } from './errors.js';
import { retentionProblems } from './retention/retention-settings.js';

const Port = z.coerce.number().int().min(0).max(65535);
const StreamBytes = z.coerce.number().int().positive();
const StreamAge = z.string().refine(isDuration, 'expected an ISO-8601 duration such as P7D (P0D: none)');
const Retention = z
  .string()
  .refine((v) => isDuration(v) && parseDuration(v) > 0, 'expected an ISO-8601 duration such as P30D');

/** Collector settings, from the environment (12-factor: the unit file or compose file sets them). */
export const CloudConfigSchema = z.object({
  /** Comma-separated NATS server URLs (several: the nodes of a cluster; the client picks and fails over). */
  NATS_URL: z.string().default('nats://127.0.0.1:4222'),
  /**
   * Replicas of every stream and of the sensor bucket: 1 on a single server, 3 on a 3-node cluster
   * (each message stored on 3 nodes, acknowledged once 2 have it). Applied at start to existing ones too.
   * Default 1 (retention-settings.ts).
   */
  FB_STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).optional(),
  NATS_USER: z.string().optional(),
  NATS_PASS: z.string().optional(),
  /**
   * The collector's nkey seed file; default (without NATS_USER) `collector.nk` in FB_IDENTITY_DIR
   * when that file exists (`fieldbeam-cloud edge add` creates it). Set, a missing file is an error.
   */
  NATS_NKEY_SEED_FILE: z.string().min(1).optional(),
  /** Edge registry, nats-authorization.conf and collector.nk; default `${FB_DATA_DIR}/identity`. */
  FB_IDENTITY_DIR: z.string().min(1).optional(),
  /** Any PostgreSQL; when unset, an embedded Postgres runs in `${FB_DATA_DIR}/postgres`. */
  DATABASE_URL: z.string().optional(),
  FB_DATA_DIR: z.string().default('/var/lib/fieldbeam-cloud'),
  /** Port of the embedded Postgres (only without DATABASE_URL). */
  FB_EMBEDDED_PG_PORT: Port.default(5433),
  FB_HTTP_HOST: z.string().default('127.0.0.1'),
  FB_HTTP_PORT: Port.default(8080),
  /**
   * Host names the HTTP server answers to besides IP literals, loopback, single-label and private-use
   * names and this machine's name (allowed-hosts.ts: DNS rebinding); comma-separated, `*.domain` for
   * subdomains, `*` for any. Another Host is a 421, except under /edge/.
   */
  FB_HTTP_ALLOWED_HOSTS: z
    .string()
    .refine(
      (v) =>
        v
          .split(',')
          .map((e) => e.trim())
          .filter(Boolean)
          .every((e) => ALLOWED_HOST_ENTRY.test(e)),
      'a comma-separated list of host names (collector.example.org, *.example.org) or *',
    )
    .optional(),
  /** Durable consumer name shared by every collector process that ingests. */
  FB_INGEST_CONSUMER: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('ingest'),
  /** NATS messages (batches) fetched and committed in one transaction. */
  FB_INGEST_FETCH: z.coerce.number().int().min(1).max(1000).default(64),
  /** Ingest rounds committing at once on separate connections; default 2. */
  FB_INGEST_PARALLEL: z.coerce.number().int().min(1).max(8).optional(),
  /** Threads that decode, validate and encode batches beside the main thread; 0: on it. Default 2. */
  FB_INGEST_DECODE_THREADS: z.coerce.number().int().min(0).max(16).optional(),
  /**
   * Observation times ingest accepts, as ISO-8601 durations around the collector's clock: how far back
   * (default P366D) and how far ahead (default PT1H). Outside them an observation is dead-lettered.
   */
  FB_INGEST_MAX_AGE: z.string().refine(isDuration, 'expected an ISO-8601 duration such as P30D').optional(),
  FB_INGEST_MAX_FUTURE: z
    .string()
    .refine(isDuration, 'expected an ISO-8601 duration such as PT10M')
    .optional(),
  /** Size of the OBS stream (bytes), i.e. how much the collector side can buffer while ingest is down. */
  FB_OBS_MAX_BYTES: z.coerce.number().int().positive().optional(),
  /**
   * The streams' limits, applied at every start to existing streams too (retention/stream-limits.ts):
   * bytes, and age as an ISO-8601 duration (P0D: no age limit). Defaults in protocol/src/streams.ts.
   */
  FB_OBS_MAX_AGE: StreamAge.optional(),
  FB_EVENTS_MAX_BYTES: StreamBytes.optional(),
  FB_EVENTS_MAX_AGE: StreamAge.optional(),
  FB_DATASETS_MAX_BYTES: StreamBytes.optional(),
  FB_DATASETS_MAX_AGE: StreamAge.optional(),
  FB_STATUS_MAX_BYTES: StreamBytes.optional(),
  FB_STATUS_MAX_AGE: StreamAge.optional(),
  /**
   * How long rows of the bookkeeping tables are kept (ISO-8601 durations, defaults in
   * retention/retention-settings.ts); one collector at a time prunes them every FB_RETENTION_EVERY.
   */
  FB_RETAIN_WINDOW_MARKS: Retention.optional(),
  FB_RETAIN_DATASET_BUILDS: Retention.optional(),
  FB_RETAIN_DEAD_LETTERS: Retention.optional(),
  FB_RETENTION_EVERY: Retention.optional(),
  LOG_LEVEL: z.string().default('info'),
  /** json, journal (syslog priority prefixes for journald) or pretty; unset: chosen by where stdout goes. */
  LOG_FORMAT: z.enum(LOG_FORMATS).optional(),

  // Everything below is optional in the type, with its default applied where it is used, so that
  // callers building a config object in code (tests, embedding) need not know every setting.

  /** YAML file declaring the datasets (see README); unset: no datasets, ingest only. */
  FB_DATASETS_FILE: z.string().optional(),
  /** Where built datasets and exports go: `folder` (default) or `s3`. */
  FB_OBJECT_STORE: z.enum(['folder', 's3']).optional(),
  /** Root of the folder object store; default `${FB_DATA_DIR}/objects`. */
  FB_OBJECT_DIR: z.string().optional(),
  FB_S3_BUCKET: z.string().min(3).max(63).optional(),
  FB_S3_PREFIX: z.string().optional(),
  /** S3-compatible endpoint URL; unset for AWS. */
  FB_S3_ENDPOINT: z.url().optional(),
  FB_S3_REGION: z.string().optional(),
  FB_S3_FORCE_PATH_STYLE: z
    .enum(['true', 'false', '1', '0'])
    .transform((v) => v === 'true' || v === '1')
    .optional(),
  /** Static S3 credentials; unset: the SDK's default chain (AWS_ACCESS_KEY_ID, profile, role). */
  FB_S3_ACCESS_KEY_ID: z.string().optional(),
  FB_S3_SECRET_ACCESS_KEY: z.string().optional(),
  /** How often the builder looks for due windows (ms); default 1000. */
  FB_BUILD_POLL_MS: z.coerce.number().int().min(10).max(600_000).optional(),
  /** A build's lease (ms): a builder that stops renewing it (crash) frees the window after this; default 60000. */
  FB_BUILD_LEASE_MS: z.coerce.number().int().min(500).max(3_600_000).optional(),
  /** Durable consumer names on the events and datasets streams, shared by every collector. */
  FB_COORDINATOR_CONSUMER: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .optional(),
  /** Exporters to run, comma-separated, from `geoparquet`, `api`; default both. */
  FB_EXPORTERS: z
    .string()
    .regex(/^\s*((geoparquet|api)\s*(,\s*|$))*$/, 'a comma-separated list of geoparquet, api')
    .optional(),
  /**
   * Deliveries of one dataset version to an exporter before a failure that may pass (object store
   * down) is given up and dead-lettered; default 20 (about an hour with the default delays).
   */
  FB_EXPORT_MAX_DELIVER: z.coerce.number().int().min(1).max(1000).optional(),
  /** Wait before an exporter's first retry (ms), doubling per try up to 5 min; default 2000. */
  FB_EXPORT_RETRY_MS: z.coerce.number().int().min(10).max(300_000).optional(),
  /** Tries of one window's build before a failure that may pass is given up and dead-lettered; default 20. */
  FB_BUILD_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(1000).optional(),
  /** Wait before a failed build's first retry (ms), doubling per try up to 5 min; default 1000. */
  FB_BUILD_RETRY_MS: z.coerce.number().int().min(10).max(300_000).optional(),
  /** Largest page the read API returns (`limit`); default 10000. */
  FB_API_MAX_LIMIT: z.coerce.number().int().min(1).max(100_000).optional(),
  /** This process in leases and build records; default `<hostname>:<pid>`. */
  FB_COLLECTOR_ID: z.string().min(1).max(200).optional(),
  /** Folder whose files (`release.json`, the .deb, the bundle) are served at `/edge/releases/<name>`; unset: none. */
  FB_RELEASES_DIR: z.string().min(1).optional(),
  /**
   * Bearer token of the `/admin/...` HTTP routes (at least 24 characters; e.g. `openssl rand -hex 24`).
   * Unset: those routes answer 403.
   */
  FB_ADMIN_TOKEN: z.string().min(24, 'at least 24 characters (e.g. openssl rand -hex 24)').optional(),
  /** Browsers connected to the console's live updates at once; one more is answered 503. Default 50. */
  FB_CONSOLE_MAX_CLIENTS: z.coerce.number().int().min(1).max(10_000).optional(),
  /**
   * Live-update streams of one client address (IPv6: its /64) at once, logged-in admins aside (they
   * always get one). Default 4; raise it behind a proxy whose address every browser shares.
   */
  FB_CONSOLE_MAX_CLIENTS_PER_ADDRESS: z.coerce.number().int().min(1).max(10_000).optional(),
  /** Bytes of live updates a browser may leave unread before it is dropped (it reconnects). Default 1 MiB. */
  FB_CONSOLE_CLIENT_BUFFER: z.coerce
    .number()
    .int()
    .min(16_384)
    .max(64 * 1024 * 1024)
    .optional(),
  /** How often the console's live updates look for changes (fleet, readings, windows). Default 2000. */
  FB_CONSOLE_PUSH_MS: z.coerce.number().int().min(200).max(60_000).optional(),
  /** How long a console login lasts. Default 8 h. */
  FB_CONSOLE_SESSION_MS: z.coerce
    .number()
    .int()
    .min(60_000)
    .max(30 * 86_400_000)
    .optional(),
  /** Folder of the console's built browser app; unset: cloud/dist/console-app beside this module. */
  FB_CONSOLE_DIR: z.string().min(1).optional(),
});
export type CloudConfig = Readonly<z.infer<typeof CloudConfigSchema>>;

export function loadCloudConfig(env: NodeJS.ProcessEnv = process.env): CloudConfig {
  const parsed = CloudConfigSchema.safeParse(env);
  const problems = parsed.success
    ? crossCheckConfig(parsed.data)
    : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  if (!parsed.success || problems.length > 0) {
    throw new CloudError(
      CloudErrorCode.CONFIG_INVALID,
      `invalid collector settings:\n  ${problems.join('\n  ')}`,
      false,
    );
  }
  return Object.freeze(parsed.data);
}

/** Checks the settings that depend on each other; returns every problem found. */
export function crossCheckConfig(c: CloudConfig): string[] {
  const problems: string[] = [];
  if (c.FB_OBJECT_STORE === 's3' && !c.FB_S3_BUCKET)
    problems.push('FB_S3_BUCKET: required when FB_OBJECT_STORE=s3');
  if (Boolean(c.FB_S3_ACCESS_KEY_ID) !== Boolean(c.FB_S3_SECRET_ACCESS_KEY)) {
    problems.push('FB_S3_ACCESS_KEY_ID, FB_S3_SECRET_ACCESS_KEY: give both or neither');
  }
  problems.push(...retentionProblems(c));
  return problems;
}
