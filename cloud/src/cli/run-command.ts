import pg from 'pg';
import type { Logger } from 'pino';
import { createCollector } from '../app.js';
import type { CloudConfig } from '../config.js';
import { migrate } from '../db/migrations.js';

/** `fieldbeam-cloud run`: the collector until SIGTERM or SIGINT. */
export async function runCollector(config: CloudConfig, log: Logger): Promise<number> {
  const hooked = { SIGTERM: process.listeners('SIGTERM'), SIGINT: process.listeners('SIGINT') };
  const collector = await createCollector(config, log);
  // The embedded Postgres's package hooks SIGTERM and SIGINT (async-exit-hook): it would stop Postgres
  // under the running collector and exit with 143, which systemd records as a failed stop. The
  // collector stops its Postgres itself, last, in close().
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    for (const l of process.listeners(signal)) if (!hooked[signal].includes(l)) process.off(signal, l);
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      setTimeout(() => process.exit(1), 20_000).unref();
      void collector.close().then(resolve);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  log.info('stopped');
  return 0;
}

/** `fieldbeam-cloud migrate`: pending schema migrations applied to DATABASE_URL. */
export async function migrateDatabase(config: CloudConfig): Promise<number> {
  if (!config.DATABASE_URL)
    throw new Error('migrate needs DATABASE_URL (run starts its embedded Postgres itself)');
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL });
  try {
    const applied = await migrate(pool);
    process.stdout.write(
      applied.length ? `applied migrations ${applied.join(', ')}\n` : 'schema is up to date\n',
    );
  } finally {
    await pool.end();
  }
  return 0;
}
