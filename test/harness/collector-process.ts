import { mkdirSync } from 'node:fs';
import { parsePrometheus } from './metrics.js';
import { freePort } from './ports.js';
import { type Crash, recordCrash, type Spawned, spawnProcess, waitFor } from './process.js';
import { builtCli } from './repo-root.js';

export interface CollectorProcess {
  readonly name: string;
  readonly httpPort: number;
  readonly process: Spawned | undefined;
  readonly running: boolean;
  /** Exits not caused by kill() or stop(). */
  readonly crashes: readonly Crash[];
  /** `/healthz` body and status, or undefined when it does not answer. */
  health(): Promise<{ status: number; body: Record<string, unknown> } | undefined>;
  metrics(): Promise<Map<string, number> | undefined>;
  /** Starts it (again) on the same HTTP port and data folder; resolves once `/healthz` says ok. */
  start(): Promise<void>;
  /** SIGKILL (a crash mid-ingest). */
  kill(): Promise<void>;
  /** SIGTERM, then SIGKILL after the grace period. */
  stop(): Promise<void>;
}

/**
 * `fieldbeam-cloud run` as its own OS process, ingest only (no datasets), on a fixed free loopback port.
 * Collectors given the same `consumer` share the durable ingest consumer.
 */
export async function startCollectorProcess(opts: {
  name: string;
  natsUrl: string;
  databaseUrl: string;
  dataDir: string;
  consumer?: string;
  fetch?: number;
  env?: Record<string, string>;
  logLevel?: string;
  /** Called when the collector exits by itself (a crash). */
  onCrash?: (crash: Crash) => void;
}): Promise<CollectorProcess> {
  const httpPort = await freePort();
  mkdirSync(opts.dataDir, { recursive: true });
  let proc: Spawned | undefined;
  const base = `http://127.0.0.1:${httpPort}`;
  const running = () => !!proc && proc.child.exitCode === null && proc.child.signalCode === null;
  const crashes: Crash[] = [];
  let intended = false;

  const health = async () => {
    try {
      const res = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    } catch {
      return undefined;
    }
  };

  const start = async () => {
    if (running()) throw new Error(`collector ${opts.name} is already running`);
    intended = false;
    const p = spawnProcess(process.execPath, [builtCli.cloud, 'run'], {
      env: {
        ...process.env,
        NATS_URL: opts.natsUrl,
        DATABASE_URL: opts.databaseUrl,
        FB_DATA_DIR: opts.dataDir,
        FB_HTTP_HOST: '127.0.0.1',
        FB_HTTP_PORT: String(httpPort),
        FB_INGEST_CONSUMER: opts.consumer ?? 'ingest',
        ...(opts.fetch ? { FB_INGEST_FETCH: String(opts.fetch) } : {}),
        FB_COLLECTOR_ID: opts.name,
        LOG_LEVEL: opts.logLevel ?? process.env.TEST_LOG_LEVEL ?? 'warn',
        ...opts.env,
      },
    });
    proc = p;
    recordCrash(p, () => intended || proc !== p, crashes, opts.onCrash);
    try {
      await waitFor(
        `collector ${opts.name} to be healthy`,
        async () => {
          if (p.child.exitCode !== null) throw new Error(`exited with ${p.child.exitCode}`);
          return (await health())?.status === 200 ? true : undefined;
        },
        60_000,
      );
    } catch (err) {
      intended = true;
      await p.kill();
      throw new Error(`collector ${opts.name} did not start: ${(err as Error).message}\n${p.output()}`);
    }
  };
  await start();

  return {
    name: opts.name,
    httpPort,
    get process() {
      return proc;
    },
    get running() {
      return running();
    },
    crashes,
    health,
    async metrics() {
      try {
        const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
        return parsePrometheus(await res.text());
      } catch {
        return undefined;
      }
    },
    start,
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
