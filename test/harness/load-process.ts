import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './repo-root.js';

/** The built worker (tests running from sources still fork the compiled file). */
export const loadWorkerPath = join(repoRoot(), 'test/dist/harness/load-worker.js');

export interface LoadWorkerOptions {
  url: string;
  clientId: string;
  station: string;
  topicPrefix: string;
  /** `json`: `{"t": <epoch ms at first send>, "v": seq}` (sensor time, so a resent reading keeps its id); `number`: the bare seq. */
  format: 'json' | 'number';
  rate: number;
  maxMessages: number;
  maxInFlight: number;
  /** Stops publishing after this long, whatever is left. */
  maxSeconds?: number;
}

export type LoadWorkerMessage =
  | { cmd: 'snapshot'; id: number }
  | { cmd: 'stop'; id: number; drainMs: number };

interface Counts {
  acked: number;
  sent: number;
  errors: number;
  inFlight: number;
}
export type LoadWorkerReply =
  | ({ type: 'progress'; time: number } & Counts)
  | ({ type: 'snapshot'; id: number; time: number } & Counts)
  | ({ type: 'done'; id: number; ranges: [number, number][] } & Counts);

export interface LoadSnapshot extends Counts {
  /** The worker's clock when it answered: every reading acknowledged so far was sent before it. */
  time: number;
}

export interface LoadProcessResult extends Counts {
  /** acked[seq] === 1 when the PUBACK of reading `seq` arrived. */
  ackedBits: Uint8Array;
}

export interface LoadProcess {
  readonly station: string;
  readonly pid: number;
  /** The latest progress report (every 200 ms). */
  readonly progress: Counts & { time: number };
  snapshot(): Promise<LoadSnapshot>;
  /** Stops publishing, waits up to `drainMs` for outstanding PUBACKs, returns what was acknowledged. */
  stop(drainMs?: number): Promise<LoadProcessResult>;
  /** Ends the worker (SIGKILL) if it still runs. */
  kill(): void;
}

/**
 * An MQTT QoS 1 publisher as its own OS process (see load-worker.ts): numbered readings for one
 * station on `<topicPrefix>/<station>/v`, at `rate` per second, bounded by count, by time and by
 * `maxInFlight` unacknowledged messages (a real sensor's window).
 */
export async function startLoadProcess(opts: LoadWorkerOptions): Promise<LoadProcess> {
  const child: ChildProcess = fork(loadWorkerPath, [JSON.stringify(opts)], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    execArgv: [],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let progress: Counts & { time: number } = { acked: 0, sent: 0, errors: 0, inFlight: 0, time: Date.now() };
  let nextId = 1;
  const waiting = new Map<number, (r: LoadWorkerReply) => void>();
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.on('message', (raw) => {
    const m = raw as LoadWorkerReply;
    if (m.type === 'progress') progress = m;
    else {
      progress = { acked: m.acked, sent: m.sent, errors: m.errors, inFlight: m.inFlight, time: Date.now() };
      waiting.get(m.id)?.(m);
      waiting.delete(m.id);
    }
  });
  const ask = (msg: LoadWorkerMessage, timeoutMs: number) =>
    new Promise<LoadWorkerReply>((resolve, reject) => {
      const t = setTimeout(() => {
        waiting.delete(msg.id);
        reject(new Error(`load worker ${opts.station} did not answer ${msg.cmd}\n${out}`));
      }, timeoutMs);
      waiting.set(msg.id, (r) => {
        clearTimeout(t);
        resolve(r);
      });
      exited.then(() => {
        clearTimeout(t);
        reject(new Error(`load worker ${opts.station} exited\n${out}`));
      });
      child.send(msg);
    });

  // The worker reports within 200 ms once its client is up.
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(
      () => reject(new Error(`load worker ${opts.station} did not start\n${out}`)),
      15_000,
    );
    child.once('message', () => {
      clearTimeout(t);
      resolve();
    });
    exited.then(() => reject(new Error(`load worker ${opts.station} exited at start\n${out}`)));
  });

  let result: Promise<LoadProcessResult> | undefined;
  return {
    station: opts.station,
    pid: child.pid ?? -1,
    get progress() {
      return progress;
    },
    async snapshot() {
      const r = await ask({ cmd: 'snapshot', id: nextId++ }, 10_000);
      const time = r.type === 'snapshot' ? r.time : Date.now();
      return { acked: r.acked, sent: r.sent, errors: r.errors, inFlight: r.inFlight, time };
    },
    stop(drainMs = 30_000) {
      result ??= (async () => {
        const r = await ask({ cmd: 'stop', id: nextId++, drainMs }, drainMs + 15_000);
        if (r.type !== 'done') throw new Error('unexpected reply');
        const ackedBits = new Uint8Array(r.sent);
        for (const [a, b] of r.ranges) ackedBits.fill(1, a, b + 1);
        await Promise.race([exited, new Promise((res) => setTimeout(res, 2000))]);
        return { acked: r.acked, sent: r.sent, errors: r.errors, inFlight: r.inFlight, ackedBits };
      })();
      return result;
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
