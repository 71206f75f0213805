import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  type Spawned,
  spawnProcess,
  type TempDir,
  tempDir,
  waitForPort,
} from '@fieldbeam/test/harness';

/**
 * The agent's CLI, found through its package. (The harness's `edgeCli` is computed relative to the
 * harness sources, so from the compiled `@fieldbeam/test/harness` it points into test/.)
 */
const edgeCli = fileURLToPath(new URL('cli.js', import.meta.resolve('@fieldbeam/edge')));

/**
 * Servers for the benchmarks, built from the harness's pieces but exposing each process's pid so a
 * suite can read its CPU, RSS and I/O from /proc. Everything listens on 127.0.0.1 and is stopped by
 * its own handle (pid), never by name.
 */

export interface BenchNats {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** SIGTERM and remove its store. */
  close(): Promise<void>;
}

/** nats-server with JetStream (file store in a temp folder); `extraConfig` is appended. */
export async function startBenchNats(extraConfig = ''): Promise<BenchNats> {
  const dir: TempDir = tempDir('fieldbeam-bench-nats-');
  const port = await freePort();
  const conf = join(dir.path, 'nats.conf');
  writeFileSync(
    conf,
    `listen: 127.0.0.1:${port}
jetstream { store_dir: "${join(dir.path, 'jetstream')}", max_memory_store: 256MB, max_file_store: 8GB }
${extraConfig}
`,
  );
  const proc: Spawned = spawnProcess(process.env.NATS_SERVER_BIN ?? 'nats-server', ['-c', conf]);
  try {
    await waitForPort(port);
  } catch (err) {
    await proc.kill();
    dir.remove();
    throw new Error(`nats-server did not start: ${(err as Error).message}\n${proc.output()}`);
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: proc.pid,
    async close() {
      await proc.stop();
      dir.remove();
    },
  };
}

export interface BenchAgent {
  readonly mqttPort: number;
  readonly httpPort: number;
  readonly pid: number;
  readonly process: Spawned;
  /** Prometheus text from /metrics, summed per metric name over its labels. */
  metrics(): Promise<Map<string, number>>;
  healthz(): Promise<{ buffer: { depth: number; bytes: number }; uplink: string }>;
  /** SIGTERM (the agent commits and closes), SIGKILL after 20 s. */
  stop(): Promise<void>;
}

/**
 * `fieldbeam-edge run` as its own process (as the harness's startEdgeProcess does), on free loopback
 * ports, with optional extra node flags (e.g. `--cpu-prof`).
 */
export async function startBenchAgent(
  dir: string,
  config: Record<string, unknown>,
  opts: { nodeArgs?: string[]; waitMs?: number } = {},
): Promise<BenchAgent> {
  const [mqttPort, httpPort] = await Promise.all([freePort(), freePort()]);
  const configFile = join(dir, 'edge.yaml');
  writeFileSync(
    configFile,
    JSON.stringify({
      data_dir: join(dir, 'data'),
      ...config,
      mqtt: { ...(config.mqtt as object), host: '127.0.0.1', port: mqttPort },
      http: { host: '127.0.0.1', port: httpPort },
    }),
  );
  const proc = spawnProcess(
    process.execPath,
    [...(opts.nodeArgs ?? []), edgeCli, 'run', '--config', configFile],
    {
      env: { ...process.env, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn' },
    },
  );
  const exited = new Promise<never>((_, reject) => {
    proc.child.once('exit', (code, signal) => reject(new Error(`exited early (${code ?? signal})`)));
  });
  exited.catch(() => {});
  try {
    await Promise.race([
      exited,
      Promise.all([
        waitForPort(mqttPort, opts.waitMs ?? 60_000),
        waitForPort(httpPort, opts.waitMs ?? 60_000),
      ]),
    ]);
  } catch (err) {
    await proc.kill();
    throw new Error(`edge agent did not start: ${(err as Error).message}\n${proc.output()}`);
  }
  const base = `http://127.0.0.1:${httpPort}`;
  return {
    mqttPort,
    httpPort,
    pid: proc.pid,
    process: proc,
    async metrics() {
      const text = await (await fetch(`${base}/metrics`)).text();
      return parsePrometheus(text);
    },
    async healthz() {
      return (await (await fetch(`${base}/healthz`)).json()) as {
        buffer: { depth: number; bytes: number };
        uplink: string;
      };
    },
    stop: () => proc.stop(20_000),
  };
}

export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const name = m[1] as string;
    const v = Number(m[3]);
    if (Number.isFinite(v)) out.set(name, (out.get(name) ?? 0) + v);
  }
  return out;
}
