/**
 * systemd service notifications (sd_notify(3)) without libsystemd or the systemd-notify program:
 * `READY=1`, `STATUS=...`, `STOPPING=1` and the watchdog keep-alive `WATCHDOG=1`, each one datagram
 * of `KEY=VALUE` lines sent to the AF_UNIX socket named by `$NOTIFY_SOCKET`.
 *
 * Node's core cannot send that datagram: `node:dgram` is UDP only and `node:net` unix sockets are
 * streams (nodejs/node#61933, closed unimplemented). So the sending is a `NotifyTransport` handed in;
 * `loadUnixDgramTransport()` provides one from the `unix-dgram` package when that is installed.
 * Without a transport, or outside systemd (no `$NOTIFY_SOCKET`), every call is a no-op.
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
  /** Stops the watchdog timer and closes the transport. */
  close(): void;
}

const NOOP: SystemdNotifier = {
  watchdogMs: undefined,
  ready: async () => {},
  status: async () => {},
  stopping: async () => {},
  startWatchdog: () => {},
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
    watchdogMs: ne.watchdogMs,
    ready: (status) => send(status ? { READY: 1, STATUS: status } : { READY: 1 }),
    status: (text) => send({ STATUS: text }),
    stopping: () => send({ STOPPING: 1 }),
    startWatchdog(alive = () => true) {
      if (ne.watchdogMs === undefined || timer) return;
      const every = Math.max(100, Math.floor(ne.watchdogMs / 2));
      timer = setInterval(() => {
        if (alive()) {
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
