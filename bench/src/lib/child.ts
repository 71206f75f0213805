import { type ChildProcess, spawn } from 'node:child_process';

/** A message a bench child process prints as one JSON line on stdout. */
export interface ChildMessage {
  type: string;
  [k: string]: unknown;
}

export interface NodeChild {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Writes one line to the child's stdin. */
  send(line: string): void;
  /** The most recent message of this type. */
  last(type: string): ChildMessage | undefined;
  /** Waits for the next message of this type (or one already received and not yet consumed). */
  next(type: string, timeoutMs: number): Promise<ChildMessage>;
  /** Everything not JSON the child wrote (for error messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. Only this child's pid is signalled. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: Promise<void>;
}

/**
 * Runs a compiled bench helper (`node <script> <json-args>`) as its own process. The child speaks
 * JSON lines on stdout (`{"type": ...}`) and reads commands from stdin.
 */
export function startNodeChild(script: string, args: unknown, nodeArgs: string[] = []): NodeChild {
  const child = spawn(process.execPath, [...nodeArgs, script, JSON.stringify(args)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: process.env,
  });
  const latest = new Map<string, ChildMessage>();
  const unread = new Map<string, ChildMessage[]>();
  const waiters = new Map<string, ((m: ChildMessage) => void)[]>();
  let text = '';
  let buf = '';
  const keep = (s: string) => {
    text += s;
    if (text.length > 50_000) text = text.slice(-25_000);
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    buf += chunk;
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
      let msg: ChildMessage | undefined;
      if (line.startsWith('{')) {
        try {
          msg = JSON.parse(line) as ChildMessage;
        } catch {
          msg = undefined;
        }
      }
      if (!msg || typeof msg.type !== 'string') {
        keep(`${line}\n`);
        continue;
      }
      latest.set(msg.type, msg);
      const w = waiters.get(msg.type)?.shift();
      if (w) w(msg);
      else unread.set(msg.type, [...(unread.get(msg.type) ?? []), msg]);
    }
  });
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', keep);
  child.stdin.on('error', () => {});
  const exited = new Promise<void>((resolve) => {
    // 'close' (not 'exit'): stdout is fully read by then, so a final large message is not cut off.
    child.once('close', () => resolve());
    child.once('error', (err) => {
      keep(`spawn error: ${err.message}\n`);
      resolve();
    });
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  return {
    pid: child.pid ?? -1,
    child,
    exited,
    send(line) {
      if (!gone() && child.stdin.writable) child.stdin.write(`${line}\n`);
    },
    last: (type) => latest.get(type),
    next(type, timeoutMs) {
      const queued = unread.get(type);
      if (queued && queued.length > 0) return Promise.resolve(queued.shift() as ChildMessage);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          const list = waiters.get(type) ?? [];
          waiters.set(
            type,
            list.filter((f) => f !== done),
          );
          reject(
            new Error(`child ${child.pid} sent no "${type}" within ${timeoutMs} ms\n${text.slice(-4000)}`),
          );
        }, timeoutMs);
        const done = (m: ChildMessage) => {
          clearTimeout(t);
          resolve(m);
        };
        void exited.then(() => {
          // A child that exits without the message fails the wait at once.
          setTimeout(() => {
            if ((waiters.get(type) ?? []).includes(done)) {
              clearTimeout(t);
              reject(new Error(`child ${child.pid} exited before "${type}"\n${text.slice(-4000)}`));
            }
          }, 50);
        });
        waiters.set(type, [...(waiters.get(type) ?? []), done]);
      });
    },
    output: () => text,
    async stop(graceMs = 5000) {
      if (gone()) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => {
        if (!gone()) child.kill('SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** In a child: prints one message line; resolves once it is handed to the OS (await before exiting). */
export function emit(msg: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    process.stdout.write(`${JSON.stringify(msg)}\n`, () => resolve());
  });
}

/** In a child: calls `onLine` for each line read from stdin. */
export function onStdinLine(onLine: (line: string) => void): void {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buf += chunk;
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      onLine(buf.slice(0, nl).trim());
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
    }
  });
}
