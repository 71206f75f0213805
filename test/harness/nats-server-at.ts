import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NatsServer } from './nats-server.js';
import { freePort } from './ports.js';
import { type Spawned, spawnProcess, waitForPort } from './process.js';
import { tempDir } from './temp-dir.js';

/**
 * Like `startNatsServer`, but listening on `host`: the host end of a `NetnsLink` pair, so that an
 * agent inside the namespace reaches it over the veth while host processes reach it locally. That
 * address exists only on the pair the test made. Also returns the process, for its pid.
 */
export async function startNatsServerAt(
  host: string,
  opts: { extraConfig?: string; binary?: string } = {},
): Promise<NatsServer & { readonly process: Spawned | undefined }> {
  const dir = tempDir('fieldbeam-nats-');
  const port = await freePort();
  const storeDir = join(dir.path, 'jetstream');
  const conf = join(dir.path, 'nats.conf');
  writeFileSync(
    conf,
    `listen: ${host}:${port}
jetstream { store_dir: "${storeDir}", max_memory_store: 256MB, max_file_store: 4GB }
${opts.extraConfig ?? ''}
`,
  );
  const bin = opts.binary ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  let proc: Spawned | undefined;
  const start = async () => {
    proc = spawnProcess(bin, ['-c', conf]);
    try {
      await waitForPort(port, 20_000, host);
    } catch (err) {
      await proc.kill();
      throw new Error(`nats-server did not start: ${(err as Error).message}\n${proc.output()}`);
    }
  };
  await start();
  return {
    url: `nats://${host}:${port}`,
    port,
    storeDir,
    get process() {
      return proc;
    },
    stop: async () => proc?.stop(),
    kill: async () => proc?.kill(),
    restart: async () => {
      await proc?.stop();
      await start();
    },
    close: async () => {
      await proc?.stop();
      dir.remove();
    },
  };
}
