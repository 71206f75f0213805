import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureStreams } from '@fieldbeam/cloud';
import { streams } from '@fieldbeam/protocol';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { freePort } from './ports.js';
import { type Spawned, spawnProcess, waitForPort } from './process.js';
import { type TempDir, tempDir } from './temp-dir.js';

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Stops the server (SIGTERM) and keeps its store. */
  stop(): Promise<void>;
  /** SIGKILL, keeping the store (crash). */
  kill(): Promise<void>;
  /** Starts it again on the same port with the same store. */
  restart(): Promise<void>;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

/**
 * nats-server (Debian package) with JetStream, on a free loopback port, its store in a temp folder.
 * `extraConfig` is appended to the generated config (accounts, authorization, ...); `streams`
 * creates Fieldbeam's streams as the collector would.
 */
export async function startNatsServer(
  opts: { extraConfig?: string; binary?: string; streams?: boolean } = {},
): Promise<NatsServer> {
  const server = await startNatsServerAt('127.0.0.1', opts);
  if (opts.streams) {
    // What the collector does at start; tests of the edge alone need the streams too.
    const nc = await connect({ servers: server.url });
    try {
      await ensureStreams(await jetstreamManager(nc), Object.values(streams));
    } catch (err) {
      await server.close();
      throw err;
    } finally {
      await nc.close();
    }
  }
  return server;
}

/**
 * Like `startNatsServer`, but listening on `host`: e.g. the host end of a `NetnsLink` pair, so that an
 * agent inside the namespace reaches it over the veth while host processes reach it locally. Also
 * returns the process, for its pid.
 */
export async function startNatsServerAt(
  host: string,
  opts: { extraConfig?: string; binary?: string } = {},
): Promise<NatsServer & { readonly process: Spawned | undefined }> {
  const dir: TempDir = tempDir('fieldbeam-nats-');
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
