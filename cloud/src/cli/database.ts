import pg from 'pg';
import type { CloudConfig } from '../config.js';
import { embeddedDatabaseUrl, embeddedPostgresDir } from '../db/embedded-postgres.js';

/**
 * The database of the CLI commands: DATABASE_URL, or the embedded Postgres of a running collector, as
 * the collector's own role (its password is in the embedded Postgres's data folder).
 */
export function databaseUrl(config: CloudConfig): string {
  return (
    config.DATABASE_URL ??
    embeddedDatabaseUrl(embeddedPostgresDir(config.FB_DATA_DIR), config.FB_EMBEDDED_PG_PORT)
  );
}

/** Runs `f` with a small pool on the CLI's database, ended afterwards. */
export async function withPool<T>(config: CloudConfig, f: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: databaseUrl(config), max: 2 });
  try {
    return await f(pool);
  } finally {
    await pool.end();
  }
}
