import { z } from 'zod';
import { CloudError, CloudErrorCode } from './errors.js';

const Port = z.coerce.number().int().min(0).max(65535);

/** Collector settings, from the environment (12-factor: the unit file or compose file sets them). */
export const CloudConfigSchema = z.object({
  /** Comma-separated NATS server URLs. */
  NATS_URL: z.string().default('nats://127.0.0.1:4222'),
  NATS_USER: z.string().optional(),
  NATS_PASS: z.string().optional(),
  /** Any PostgreSQL; when unset, an embedded Postgres runs in `${FB_DATA_DIR}/postgres`. */
  DATABASE_URL: z.string().optional(),
  FB_DATA_DIR: z.string().default('/var/lib/fieldbeam-cloud'),
  /** Port of the embedded Postgres (only without DATABASE_URL). */
  FB_EMBEDDED_PG_PORT: Port.default(5433),
  FB_HTTP_HOST: z.string().default('127.0.0.1'),
  FB_HTTP_PORT: Port.default(8080),
  /** Durable consumer name shared by every collector process that ingests. */
  FB_INGEST_CONSUMER: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/)
    .default('ingest'),
  /** NATS messages (batches) fetched and committed in one transaction. */
  FB_INGEST_FETCH: z.coerce.number().int().min(1).max(1000).default(64),
  /** Size of the OBS stream (bytes), i.e. how much the collector side can buffer while ingest is down. */
  FB_OBS_MAX_BYTES: z.coerce.number().int().positive().optional(),
  LOG_LEVEL: z.string().default('info'),
});
export type CloudConfig = Readonly<z.infer<typeof CloudConfigSchema>>;

export function loadCloudConfig(env: NodeJS.ProcessEnv = process.env): CloudConfig {
  const parsed = CloudConfigSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new CloudError(
      CloudErrorCode.CONFIG_INVALID,
      `invalid collector settings:\n  ${problems.join('\n  ')}`,
      false,
    );
  }
  return Object.freeze(parsed.data);
}
