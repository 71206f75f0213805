import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeStatus } from '@fieldbeam/protocol';
import { freePort } from './ports.js';
import { type Spawned, spawnProcess, waitFor, waitForPort } from './process.js';
import { builtCli } from './repo-root.js';

/** The built CLIs, found from the repository root (right from test/harness and test/dist/harness). */
export const edgeCli = builtCli.edge;
export const cloudCli = builtCli.cloud;

export interface EdgeProcess {
  readonly mqttPort: number;
  readonly httpPort: number;
  readonly configFile: string;
  readonly process: Spawned;
  status(): Promise<EdgeStatus & { ok: boolean }>;
  /** Starts the agent again with the same config, buffer and ports. */
  restart(): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
  /** Rewrites the config file (e.g. before a SIGHUP). */
  writeConfig(config: Record<string, unknown>): void;
  signal(sig: NodeJS.Signals): void;
}

/**
 * Runs `fieldbeam-edge run` as its own OS process, on fixed free ports so restarts keep them.
 * `opts.env` adds to its environment (e.g. `NOTIFY_SOCKET`).
 */
export async function startEdgeProcess(
  dir: string,
  config: Record<string, unknown>,
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<EdgeProcess> {
  const [mqttPort, httpPort] = await Promise.all([freePort(), freePort()]);
  const configFile = join(dir, 'edge.yaml');
  const write = (c: Record<string, unknown>) =>
    writeFileSync(
      configFile,
      // JSON is YAML.
      JSON.stringify({
        data_dir: join(dir, 'data'),
        ...c,
        mqtt: { host: '127.0.0.1', ...(c.mqtt as object), port: mqttPort },
        http: { host: '127.0.0.1', port: httpPort },
      }),
    );
  write(config);
  let proc: Spawned;
  const start = async () => {
    proc = spawnProcess(process.execPath, [edgeCli, 'run', '--config', configFile], {
      env: { ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn', ...opts.env },
    });
    try {
      const external = (config.mqtt as { mode?: string } | undefined)?.mode === 'external';
      await Promise.all([
        external ? undefined : waitForPort(mqttPort, 30_000),
        waitForPort(httpPort, 30_000),
      ]);
    } catch (err) {
      await proc.kill();
      throw new Error(`edge agent did not start: ${(err as Error).message}\n${proc.output()}`);
    }
  };
  await start();
  const status = async () =>
    (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()) as EdgeStatus & { ok: boolean };
  return {
    mqttPort,
    httpPort,
    configFile,
    get process() {
      return proc;
    },
    status,
    async restart() {
      await start();
      await waitFor('edge status', async () => ((await status()).ok ? true : undefined));
    },
    kill: () => proc.kill(),
    stop: () => proc.stop(),
    writeConfig: write,
    signal: (sig) => proc.child.kill(sig),
  };
}
