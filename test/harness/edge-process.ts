import { join } from 'node:path';
import type { EdgeStatus } from '@fieldbeam/protocol';
import { startEdgeAgentProcess } from './edge-agent-process.js';
import type { Spawned } from './process.js';
import { waitFor } from './process.js';
import { builtCli } from './repo-root.js';

/** The built CLIs, found from the repository root (right from test/harness and test/dist/harness). */
export const edgeCli = builtCli.edge;
export const cloudCli = builtCli.cloud;

export interface EdgeProcess {
  readonly mqttPort: number;
  readonly httpPort: number;
  readonly configFile: string;
  readonly process: Spawned;
  /** `/healthz`; throws when the agent does not answer. */
  status(): Promise<EdgeStatus & { ok: boolean }>;
  /** Starts the agent again with the same config, buffer and ports, and waits until it is ok. */
  restart(): Promise<void>;
  kill(): Promise<void>;
  stop(): Promise<void>;
  /** Rewrites the config file (e.g. before a SIGHUP). */
  writeConfig(config: Record<string, unknown>): void;
  signal(sig: NodeJS.Signals): void;
}

/**
 * `startEdgeAgentProcess` for the common case: one agent on loopback with its config in
 * `<dir>/edge.yaml` and its buffer in `<dir>/data`. `opts.env` adds to its environment.
 */
export async function startEdgeProcess(
  dir: string,
  config: Record<string, unknown>,
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<EdgeProcess> {
  const agent = await startEdgeAgentProcess({
    dir,
    config: { edge: 'gw', ...config },
    configFile: join(dir, 'edge.yaml'),
    dataDir: join(dir, 'data'),
    ...(opts.env ? { env: opts.env } : {}),
  });
  const status = async () => {
    const s = await agent.status(5000);
    if (!s) throw new Error(`edge agent on port ${agent.httpPort} does not answer /healthz`);
    return s;
  };
  return {
    mqttPort: agent.mqttPort,
    httpPort: agent.httpPort,
    configFile: agent.configFile,
    get process() {
      if (!agent.process) throw new Error('edge agent never started');
      return agent.process;
    },
    status,
    async restart() {
      await agent.start();
      await waitFor('edge status', async () => ((await agent.status())?.ok ? true : undefined));
    },
    kill: () => agent.kill(),
    stop: () => agent.stop(),
    writeConfig: (c) => agent.writeConfig({ edge: 'gw', ...c }),
    signal: (sig) => agent.signal(sig),
  };
}
