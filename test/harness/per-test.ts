import { afterEach, beforeEach } from 'vitest';
import { type NatsServer, startNatsServer } from './nats-server.js';
import { type TempDir, tempDir } from './temp-dir.js';

export interface PerTestServers {
  /** This test's nats-server, with the Fieldbeam streams declared. */
  readonly nats: NatsServer;
  /** This test's temporary folder. */
  readonly dir: TempDir;
}

/**
 * A fresh nats-server (streams declared) and temporary folder for every test of the calling file,
 * stopped and removed after it. Call at the top level of a test file.
 */
export function natsPerTest(): PerTestServers {
  let nats: NatsServer | undefined;
  let dir: TempDir | undefined;
  beforeEach(async () => {
    nats = await startNatsServer({ streams: true });
    dir = tempDir();
  });
  afterEach(async () => {
    await nats?.close();
    dir?.remove();
    nats = undefined;
    dir = undefined;
  });
  const missing = (what: string): never => {
    throw new Error(`${what} is only there inside a test (natsPerTest)`);
  };
  return {
    get nats() {
      return nats ?? missing('nats');
    },
    get dir() {
      return dir ?? missing('dir');
    },
  };
}
