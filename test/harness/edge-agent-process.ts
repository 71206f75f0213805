import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeStatus } from '@fieldbeam/protocol';
import { parsePrometheus } from './metrics.js';
import type { NetnsLink } from './netns.js';
import { freePort } from './ports.js';
import { type Crash, recordCrash, type Spawned, spawnProcess, waitForPort } from './process.js';
import { builtCli } from './repo-root.js';

export interface EdgeAgentProcess {
  readonly edge: string;
  /** Where sensors (and the test) reach its MQTT broker and its HTTP status. */
  readonly host: string;
  readonly mqttPort: number;
  readonly httpPort: number;
  readonly mqttUrl: string;
  readonly configFile: string;
  /** Its data folder (buffer file `<edge>.buffer.sqlite`). */
  readonly dataDir: string;
  /** The current process (a new one after each start). */
  readonly process: Spawned | undefined;
  readonly running: boolean;
  /** Exits not caused by kill() or stop(). */
  readonly crashes: readonly Crash[];
  /** `/healthz` (also on 503), or undefined when the agent does not answer. */
  status(timeoutMs?: number): Promise<(EdgeStatus & { ok: boolean }) | undefined>;
  /** `/metrics`, parsed into name{labels} -> value; undefined when the agent does not answer. */
  metrics(): Promise<Map<string, number> | undefined>;
  /** Starts the agent (again) with the same config, buffer file and ports. */
  start(): Promise<void>;
  /** Rewrites the config file (same ports and folders), e.g. before a SIGHUP. */
  writeConfig(config: Record<string, unknown>): void;
  signal(sig: NodeJS.Signals): void;
  /** SIGKILL: a crash, or a power cut after the last commit. */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after the grace period. */
  stop(): Promise<void>;
}

/**
 * `fieldbeam-edge run` as its own OS process, optionally inside a network namespace (then its MQTT
 * broker and HTTP status listen on the namespace's veth address so that host-side publishers and the
 * test reach them, while its uplink goes over the pair). Ports are fixed at creation so restarts keep
 * them. `config` is the agent's YAML config as an object; data_dir, mqtt host/port and http are set here.
 */
export async function startEdgeAgentProcess(opts: {
  dir: string;
  config: Record<string, unknown> & { edge: string };
  netns?: NetnsLink;
  logLevel?: string;
  /** Added to the agent's environment (e.g. `NOTIFY_SOCKET`). */
  env?: NodeJS.ProcessEnv;
  /** Config file and buffer folder; default `<dir>/<edge>.edge.yaml` and `<dir>/<edge>-data`. */
  configFile?: string;
  dataDir?: string;
  /** Called when the agent exits by itself (a crash). */
  onCrash?: (crash: Crash) => void;
}): Promise<EdgeAgentProcess> {
  const host = opts.netns?.nsAddr ?? '127.0.0.1';
  const [mqttPort, httpPort] = await Promise.all([freePort(), freePort()]);
  const configFile = opts.configFile ?? join(opts.dir, `${opts.config.edge}.edge.yaml`);
  const dataDir = opts.dataDir ?? join(opts.dir, `${opts.config.edge}-data`);
  const writeConfig = (config: Record<string, unknown>) =>
    writeFileSync(
      configFile,
      // JSON is YAML.
      JSON.stringify({
        data_dir: dataDir,
        status_interval_ms: 2000,
        clock: { sync_check: 'none' },
        ...config,
        mqtt: { ...(config.mqtt as object), host, port: mqttPort },
        http: { host, port: httpPort },
      }),
    );
  writeConfig(opts.config);
  // With an external broker the agent has no MQTT listener of its own.
  const external = (opts.config.mqtt as { mode?: string } | undefined)?.mode === 'external';
  let proc: Spawned | undefined;
  const base = `http://${host}:${httpPort}`;
  const get = async (path: string, timeoutMs: number) => {
    try {
      const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
      return await res.text();
    } catch {
      return undefined;
    }
  };
  const running = () => !!proc && proc.child.exitCode === null && proc.child.signalCode === null;
  const crashes: Crash[] = [];
  let intended = false;

  const start = async () => {
    if (running()) throw new Error(`edge ${opts.config.edge} is already running`);
    const args = [builtCli.edge, 'run', '--config', configFile];
    const [cmd, argv] = opts.netns ? opts.netns.wrap(process.execPath, args) : [process.execPath, args];
    intended = false;
    const p = spawnProcess(cmd, argv, {
      env: { ...process.env, LOG_LEVEL: opts.logLevel ?? process.env.TEST_LOG_LEVEL ?? 'warn', ...opts.env },
    });
    proc = p;
    recordCrash(p, () => intended || proc !== p, crashes, opts.onCrash);
    try {
      await Promise.all([
        external ? undefined : waitForPort(mqttPort, 30_000, host),
        waitForPort(httpPort, 30_000, host),
      ]);
    } catch (err) {
      intended = true;
      await p.kill();
      throw new Error(`edge agent did not start: ${(err as Error).message}\n${p.output()}`);
    }
  };
  await start();

  return {
    edge: opts.config.edge,
    host,
    mqttPort,
    httpPort,
    mqttUrl: `mqtt://${host}:${mqttPort}`,
    configFile,
    dataDir,
    get process() {
      return proc;
    },
    get running() {
      return running();
    },
    crashes,
    async status(timeoutMs = 2000) {
      const text = await get('/healthz', timeoutMs);
      if (text === undefined) return undefined;
      try {
        return JSON.parse(text) as EdgeStatus & { ok: boolean };
      } catch {
        return undefined;
      }
    },
    async metrics() {
      const text = await get('/metrics', 5000);
      return text === undefined ? undefined : parsePrometheus(text);
    },
    start,
    writeConfig,
    signal: (sig) => proc?.child.kill(sig),
    kill: async () => {
      intended = true;
      await proc?.kill();
    },
    stop: async () => {
      intended = true;
      await proc?.stop();
    },
  };
}
