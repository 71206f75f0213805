import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/**
 * systemd service notifications (sd_notify(3)) without libsystemd: `READY=1`, `STATUS=...`,
 * `STOPPING=1` and the watchdog keep-alive `WATCHDOG=1`, each one datagram of `KEY=VALUE` lines
 * sent to the AF_UNIX socket named by `$NOTIFY_SOCKET`.
 *
 * Node's core cannot send that datagram: `node:dgram` is UDP only and `node:net` unix sockets are
 * streams (nodejs/node#61933, closed unimplemented). So the sending is a `NotifyTransport` handed in:
 * `loadNotifyTransport()` takes the `unix-dgram` package when it is installed, else runs systemd's
 * own `systemd-notify` program (`createNotifyProgramTransport`). Without a transport, or outside
 * systemd (no `$NOTIFY_SOCKET`), every call is a no-op.
 */

/** What systemd told this process through its environment. */
export interface NotifyEnv {
  /** The socket path; an abstract socket (`@name`) is given with a leading NUL byte. */
  socket: string;
  /** `WatchdogSec=` in ms when the watchdog is on for this process, else undefined. */
  watchdogMs: number | undefined;
}

/** `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` as sd_watchdog_enabled(3) reads them. */
export function readNotifyEnv(
  env: NodeJS.ProcessEnv = process.env,
  pid = process.pid,
): NotifyEnv | undefined {
  const raw = env.NOTIFY_SOCKET;
  if (!raw || (raw[0] !== '/' && raw[0] !== '@')) return undefined; // vsock: and others: not supported
  const socket = raw[0] === '@' ? `\0${raw.slice(1)}` : raw;
  const usec = Number(env.WATCHDOG_USEC);
  const forPid = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === pid;
  const watchdogMs = Number.isInteger(usec) && usec > 0 && forPid ? Math.floor(usec / 1000) : undefined;
  return { socket, watchdogMs };
}

/**
 * Variables through which systemd talks to the process it started: the notify socket and watchdog
 * (sd_notify(3)), socket activation (sd_listen_fds(3)) and memory pressure (sd_event's
 * `MEMORY_PRESSURE_WATCH`). They are meant for the agent alone. A systemd tool run by the agent
 * (timedatectl) reads them as its own: on failure it reports `ERRNO=<n>` to the manager in the
 * agent's name, as if the agent had failed.
 */
export const SERVICE_MANAGER_ENV = [
  'NOTIFY_SOCKET',
  'WATCHDOG_USEC',
  'WATCHDOG_PID',
  'LISTEN_FDS',
  'LISTEN_PID',
  'LISTEN_FDNAMES',
  'MEMORY_PRESSURE_WATCH',
  'MEMORY_PRESSURE_WRITE',
] as const;

/** The environment for a program the agent runs: its own, without `SERVICE_MANAGER_ENV`. */
export function withoutServiceManagerEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const child = { ...env };
  for (const name of SERVICE_MANAGER_ENV) delete child[name];
  return child;
}

/** One notification: `KEY=VALUE` lines. Values may not contain a newline (it would start a new field). */
export function notifyMessage(fields: Readonly<Record<string, string | number>>): Buffer {
  const lines = Object.entries(fields).map(([k, v]) => {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(k)) throw new Error(`sd_notify: bad field name "${k}"`);
    const s = String(v);
    if (s.includes('\n')) throw new Error(`sd_notify: ${k} contains a newline`);
    return `${k}=${s}`;
  });
  return Buffer.from(`${lines.join('\n')}\n`);
}

/** Sends one datagram to an AF_UNIX datagram socket. */
export interface NotifyTransport {
  send(socket: string, message: Buffer): Promise<void>;
  close(): void;
}

export interface NotifyLog {
  warn(obj: object, msg: string): void;
}

export interface SystemdNotifier {
  /** False outside systemd or without a transport: every call is a no-op. */
  readonly enabled: boolean;
  /** `WatchdogSec=` in ms, when systemd expects keep-alives from this process. */
  readonly watchdogMs: number | undefined;
  /** `READY=1` (with `Type=notify`, systemctl start returns now), with an optional status line. */
  ready(status?: string): Promise<void>;
  /** `STATUS=...`: shown by systemctl status. */
  status(text: string): Promise<void>;
  /** `STOPPING=1`: the agent began its clean stop (flush, close). */
  stopping(): Promise<void>;
  /**
   * Sends `WATCHDOG=1` every half `WatchdogSec=` while `alive()` says so. When the event loop hangs,
   * or `alive()` turns false, the keep-alives stop and systemd restarts the service. No-op when the
   * watchdog is off.
   */
  startWatchdog(alive?: () => boolean): void;
  /** Stops the keep-alives (after `STOPPING=1`, systemd no longer expects them). */
  stopWatchdog(): void;
  /** Stops the watchdog timer and closes the transport. */
  close(): void;
}

const NOOP: SystemdNotifier = {
  enabled: false,
  watchdogMs: undefined,
  ready: async () => {},
  status: async () => {},
  stopping: async () => {},
  startWatchdog: () => {},
  stopWatchdog: () => {},
  close: () => {},
};

/**
 * A notifier for this process, or a no-op one when not run by systemd with a notify socket or when
 * there is no transport. Send errors are logged (once per kind), never thrown: a missing notification
 * must not stop the agent.
 */
export function createSystemdNotifier(
  opts: { env?: NodeJS.ProcessEnv; pid?: number; transport?: NotifyTransport; log?: NotifyLog } = {},
): SystemdNotifier {
  const ne = readNotifyEnv(opts.env ?? process.env, opts.pid ?? process.pid);
  const transport = opts.transport;
  if (!ne || !transport) {
    if (ne && !transport)
      opts.log?.warn(
        { socket: ne.socket },
        'NOTIFY_SOCKET is set but no unix datagram transport is available; sd_notify disabled',
      );
    return NOOP;
  }
  const warned = new Set<string>();
  const send = async (fields: Record<string, string | number>) => {
    try {
      await transport.send(ne.socket, notifyMessage(fields));
    } catch (err) {
      const key = Object.keys(fields).join(',');
      if (!warned.has(key)) {
        warned.add(key);
        opts.log?.warn({ err: (err as Error).message, fields: key }, 'sd_notify failed');
      }
    }
  };
  let timer: NodeJS.Timeout | undefined;
  let skipped = false;
  return {
    enabled: true,
    watchdogMs: ne.watchdogMs,
    ready: (status) => send(status ? { READY: 1, STATUS: status } : { READY: 1 }),
    status: (text) => send({ STATUS: text }),
    stopping: () => send({ STOPPING: 1 }),
    startWatchdog(alive = () => true) {
      if (ne.watchdogMs === undefined || timer) return;
      const every = Math.max(100, Math.floor(ne.watchdogMs / 2));
      const isAlive = () => {
        try {
          return alive();
        } catch {
          return false;
        }
      };
      timer = setInterval(() => {
        if (isAlive()) {
          skipped = false;
          void send({ WATCHDOG: 1 });
        } else if (!skipped) {
          skipped = true;
          opts.log?.warn({}, 'not alive: withholding the systemd watchdog keep-alive');
        }
      }, every);
      timer.unref();
      void send({ WATCHDOG: 1 });
    },
    stopWatchdog() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    close() {
      if (timer) clearInterval(timer);
      timer = undefined;
      transport.close();
    },
  };
}

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  on(event: 'error', f: (err: Error) => void): void;
  close(): void;
}

/**
 * A transport from the `unix-dgram` package (a native addon), if it is installed; else undefined.
 * Loaded by name at run time so the agent runs without it.
 */
export async function loadUnixDgramTransport(name = 'unix-dgram'): Promise<NotifyTransport | undefined> {
  let mod: { createSocket(type: 'unix_dgram'): UnixDgramSocket };
  try {
    const m = (await import(name)) as { default?: typeof mod } & typeof mod;
    mod = m.default ?? m;
  } catch {
    return undefined;
  }
  const sock = mod.createSocket('unix_dgram');
  let lastError: Error | undefined;
  sock.on('error', (err) => {
    lastError = err;
  });
  return {
    send: (socket, message) =>
      new Promise<void>((resolve, reject) => {
        lastError = undefined;
        let settled = false;
        const settle = (err?: Error) => {
          if (settled) return;
          settled = true;
          const e = err ?? lastError;
          if (e) reject(e);
          else resolve();
        };
        sock.send(message, 0, message.length, socket, settle);
        // A datagram send completes at once or fails at once; do not wait on a callback forever.
        setTimeout(() => settle(), 1000).unref();
      }),
    close: () => sock.close(),
  };
}

/**
 * A transport that runs systemd's `systemd-notify` program once per notification:
 * `systemd-notify --pid=<pid> KEY=VALUE...`, without a shell, with only `NOTIFY_SOCKET` in its
 * environment (none of the agent's secrets), killed after `timeoutMs`. Notifications go out one at
 * a time, in order; at most `maxQueued` wait, later ones fail (the notifier logs that).
 *
 * The message comes from a child process, so the unit needs `NotifyAccess=all`. `--pid` adds
 * `MAINPID=<pid>`, and where the kernel allows it (root) the message carries that pid as sender.
 * systemd-notify (since 246) waits for the manager to have read the message before it exits
 * (`BARRIER=1`, at most 5 s), so the manager can still tell which unit the short-lived sender
 * belonged to (systemd/systemd#2737).
 */
export function createNotifyProgramTransport(opts: {
  program: string;
  pid?: number;
  timeoutMs?: number;
  maxQueued?: number;
}): NotifyTransport {
  const pid = opts.pid ?? process.pid;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const maxQueued = opts.maxQueued ?? 8;
  let tail: Promise<void> = Promise.resolve();
  let queued = 0;
  let closed = false;
  const run = (socket: string, args: string[]) =>
    new Promise<void>((resolve, reject) => {
      // systemd writes an abstract socket as `@name` in the environment; readNotifyEnv made it `\0name`.
      const env = { NOTIFY_SOCKET: socket.startsWith('\0') ? `@${socket.slice(1)}` : socket };
      execFile(
        opts.program,
        [`--pid=${pid}`, ...args],
        { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 },
        (err, _stdout, stderr) => {
          if (!err) return resolve();
          const detail = String(stderr).trim().split('\n').slice(-1)[0];
          const why = err.killed ? `killed after ${timeoutMs} ms` : (detail ?? err.message);
          reject(new Error(`${opts.program} failed: ${why || err.message}`));
        },
      );
    });
  return {
    send(socket, message) {
      if (closed) return Promise.reject(new Error('notify transport closed'));
      if (queued >= maxQueued)
        return Promise.reject(new Error(`${queued} notifications still waiting for ${opts.program}`));
      const args = message
        .toString()
        .split('\n')
        .filter((l) => l !== '');
      queued++;
      const p = tail.then(() => run(socket, args));
      tail = p.then(
        () => undefined,
        () => undefined,
      );
      return p.finally(() => {
        queued--;
      });
    },
    close() {
      // Notifications already queued (STOPPING=1) still go out.
      closed = true;
    },
  };
}

/** The first executable `name` on `PATH` (or `name` itself when it is a path), else undefined. */
export function findProgram(name: string, path = process.env.PATH ?? ''): string | undefined {
  const candidates = isAbsolute(name)
    ? [name]
    : path
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, name));
  return candidates.find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The transport for this process: none outside systemd (no usable `$NOTIFY_SOCKET`), else the
 * `unix-dgram` package when installed, else the `systemd-notify` program when it is on `PATH`.
 */
export async function loadNotifyTransport(
  env: NodeJS.ProcessEnv = process.env,
  pid = process.pid,
): Promise<NotifyTransport | undefined> {
  if (!readNotifyEnv(env, pid)) return undefined;
  const dgram = await loadUnixDgramTransport();
  if (dgram) return dgram;
  const program = findProgram('systemd-notify', env.PATH ?? '');
  return program === undefined ? undefined : createNotifyProgramTransport({ program, pid });
}

/** What the service notifications need from the agent. */
export interface ServiceProbe {
  /** A short line for `systemctl status`. */
  statusLine(): string;
  /** False when the agent is stuck or broken: the watchdog keep-alive is then withheld. */
  alive(): boolean;
}

export interface ServiceNotifications {
  /** `STOPPING=1`, and no more status lines or keep-alives. Resolves when it was sent (or failed). */
  stopping(): Promise<void>;
  /** Stops the timers and closes the transport. */
  close(): void;
}

/**
 * The agent's side of `Type=notify` with `WatchdogSec=`: `READY=1` with a status line now (call it
 * once the agent runs), `WATCHDOG=1` every half `WatchdogSec=` while `probe.alive()`, and `STATUS=`
 * every `statusIntervalMs` when the line changed. A no-op outside systemd.
 */
export function startServiceNotifications(
  notifier: SystemdNotifier,
  probe: ServiceProbe,
  opts: { statusIntervalMs: number },
): ServiceNotifications {
  if (!notifier.enabled) return { stopping: async () => {}, close: () => notifier.close() };
  let last = probe.statusLine();
  void notifier.ready(last);
  notifier.startWatchdog(() => probe.alive());
  const timer = setInterval(() => {
    const line = probe.statusLine();
    if (line === last) return;
    last = line;
    void notifier.status(line);
  }, opts.statusIntervalMs);
  timer.unref();
  let stopped: Promise<void> | undefined;
  return {
    stopping() {
      clearInterval(timer);
      notifier.stopWatchdog();
      stopped ??= notifier.stopping();
      return stopped;
    },
    close() {
      clearInterval(timer);
      notifier.close();
    },
  };
}
