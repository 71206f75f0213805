import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';

export interface Spawned {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything the process wrote so far, for failure messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves when the process has exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL now (crash simulation). */
  kill(): Promise<void>;
}

/** Starts a program and keeps its output; the caller stops it by pid through the returned handle. */
export function spawnProcess(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Spawned {
  const child = spawn(cmd, args, {
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out += b.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    child.once('exit', () => resolve());
  });
  child.once('error', (err) => {
    out += `\nspawn error: ${err.message}`;
  });
  const signal = async (sig: NodeJS.Signals, graceMs: number) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(sig);
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  };
  return {
    child,
    pid: child.pid ?? -1,
    output: () => out,
    stop: (graceMs = 10_000) => signal('SIGTERM', graceMs),
    kill: () => signal('SIGKILL', 0),
  };
}

/** Resolves once something accepts TCP connections on the port, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 20_000, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls `check` until it returns a value that is not undefined, or fails with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A process that exited when nobody asked it to. */
export interface Crash {
  at: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The end of its output (stack trace, last log lines). */
  tail: string;
}

/**
 * Records the exit of `p` as a crash (into `crashes`, then `onCrash`) unless `expected()` says at exit
 * time that it was asked for or that `p` has been replaced.
 */
export function recordCrash(
  p: Spawned,
  expected: () => boolean,
  crashes: Crash[],
  onCrash?: (crash: Crash) => void,
): void {
  p.child.once('exit', (code, signal) => {
    if (expected()) return;
    const crash = { at: Date.now(), code, signal, tail: p.output().slice(-3000) };
    crashes.push(crash);
    onCrash?.(crash);
  });
}
