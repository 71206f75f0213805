import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createNotifyProgramTransport,
  createSystemdNotifier,
  findProgram,
  loadNotifyTransport,
  loadUnixDgramTransport,
  type NotifyTransport,
  notifyMessage,
  readNotifyEnv,
  startServiceNotifications,
  withoutServiceManagerEnv,
} from './systemd-notify.js';

function fakeTransport(fail = false) {
  const sent: { socket: string; text: string }[] = [];
  let closed = false;
  const transport: NotifyTransport = {
    send: async (socket, message) => {
      if (fail) throw new Error('ECONNREFUSED');
      sent.push({ socket, text: message.toString() });
    },
    close: () => {
      closed = true;
    },
  };
  return { transport, sent, closed: () => closed };
}

const env = (over: Record<string, string> = {}) => ({ NOTIFY_SOCKET: '/run/systemd/notify', ...over });

describe('withoutServiceManagerEnv', () => {
  it("drops what systemd set for the agent itself and keeps the rest, leaving the agent's own alone", () => {
    const agentEnv = env({
      WATCHDOG_USEC: '30000000',
      WATCHDOG_PID: '42',
      LISTEN_FDS: '1',
      LISTEN_PID: '42',
      LISTEN_FDNAMES: 'mqtt',
      MEMORY_PRESSURE_WATCH: '/sys/fs/cgroup/system.slice/fieldbeam-edge.service/memory.pressure',
      MEMORY_PRESSURE_WRITE: 'c29tZSAyMDAwMDAgMjAwMDAwMAA=',
      PATH: '/usr/bin:/bin',
      INVOCATION_ID: 'abc',
    });
    const before = { ...agentEnv };
    expect(withoutServiceManagerEnv(agentEnv)).toEqual({ PATH: '/usr/bin:/bin', INVOCATION_ID: 'abc' });
    expect(agentEnv).toEqual(before);
  });
});

describe('readNotifyEnv', () => {
  it('reads the socket and the watchdog interval meant for this process', () => {
    expect(readNotifyEnv(env({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }), 42)).toEqual({
      socket: '/run/systemd/notify',
      watchdogMs: 30_000,
    });
    expect(
      readNotifyEnv(env({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }), 42)?.watchdogMs,
    ).toBeUndefined();
    expect(readNotifyEnv(env({ WATCHDOG_USEC: '0' }), 42)?.watchdogMs).toBeUndefined();
    expect(readNotifyEnv(env(), 42)?.watchdogMs).toBeUndefined();
  });

  it('maps an abstract socket to a leading NUL and ignores what it cannot use', () => {
    expect(readNotifyEnv({ NOTIFY_SOCKET: '@/org/sd/notify' })?.socket).toBe('\0/org/sd/notify');
    expect(readNotifyEnv({})).toBeUndefined();
    expect(readNotifyEnv({ NOTIFY_SOCKET: 'vsock:2:1234' })).toBeUndefined();
  });
});

describe('notifyMessage', () => {
  it('is KEY=VALUE lines and refuses a newline inside a value', () => {
    expect(notifyMessage({ READY: 1, STATUS: 'buffer 0 rows' }).toString()).toBe(
      'READY=1\nSTATUS=buffer 0 rows\n',
    );
    expect(() => notifyMessage({ STATUS: 'a\nWATCHDOG=1' })).toThrow(/newline/);
    expect(() => notifyMessage({ 'bad key': 1 })).toThrow(/field name/);
  });
});

describe('createSystemdNotifier', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sends READY, STATUS and STOPPING to the socket', async () => {
    const t = fakeTransport();
    const n = createSystemdNotifier({ env: env(), transport: t.transport });
    await n.ready('running');
    await n.status('uplink down, buffering');
    await n.stopping();
    n.close();
    expect(t.sent).toEqual([
      { socket: '/run/systemd/notify', text: 'READY=1\nSTATUS=running\n' },
      { socket: '/run/systemd/notify', text: 'STATUS=uplink down, buffering\n' },
      { socket: '/run/systemd/notify', text: 'STOPPING=1\n' },
    ]);
    expect(t.closed()).toBe(true);
  });

  it('feeds the watchdog every half interval while alive, and withholds it when not', async () => {
    const t = fakeTransport();
    const warn = vi.fn();
    const n = createSystemdNotifier({
      env: env({ WATCHDOG_USEC: '10000000' }),
      transport: t.transport,
      log: { warn },
    });
    let alive = true;
    n.startWatchdog(() => alive);
    await vi.advanceTimersByTimeAsync(15_000); // first at once, then at 5 s, 10 s, 15 s
    expect(t.sent.filter((m) => m.text === 'WATCHDOG=1\n')).toHaveLength(4);
    alive = false;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(t.sent.filter((m) => m.text === 'WATCHDOG=1\n')).toHaveLength(4);
    expect(warn).toHaveBeenCalledTimes(1);
    n.close();
    alive = true;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(t.sent.filter((m) => m.text === 'WATCHDOG=1\n')).toHaveLength(4);
  });

  it('is a no-op outside systemd, without a transport, or without a watchdog', async () => {
    const t = fakeTransport();
    const outside = createSystemdNotifier({ env: {}, transport: t.transport });
    await outside.ready();
    outside.startWatchdog();
    const warn = vi.fn();
    const noTransport = createSystemdNotifier({ env: env(), log: { warn } });
    await noTransport.ready();
    expect(warn).toHaveBeenCalledWith(expect.anything(), expect.stringMatching(/no unix datagram transport/));
    const noWatchdog = createSystemdNotifier({ env: env(), transport: t.transport });
    noWatchdog.startWatchdog();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.sent).toEqual([]);
  });

  it('logs a failing send once and never throws', async () => {
    const warn = vi.fn();
    const n = createSystemdNotifier({ env: env(), transport: fakeTransport(true).transport, log: { warn } });
    await expect(n.ready()).resolves.toBeUndefined();
    await n.ready();
    expect(warn).toHaveBeenCalledTimes(1);
  });
});

describe('loadUnixDgramTransport', () => {
  it('is undefined when the package is not installed', async () => {
    expect(await loadUnixDgramTransport('fieldbeam-no-such-package')).toBeUndefined();
  });
});

describe('startServiceNotifications', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const texts = (t: ReturnType<typeof fakeTransport>) => t.sent.map((m) => m.text);

  it('READY with a status line at once, keep-alives every half WatchdogSec while alive, STATUS when the line changes', async () => {
    const t = fakeTransport();
    const n = createSystemdNotifier({ env: env({ WATCHDOG_USEC: '4000000' }), transport: t.transport });
    let line = 'uplink connected, buffer 0 readings';
    let alive = true;
    const s = startServiceNotifications(
      n,
      { statusLine: () => line, alive: () => alive },
      { statusIntervalMs: 1000 },
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(texts(t)).toEqual(['READY=1\nSTATUS=uplink connected, buffer 0 readings\n', 'WATCHDOG=1\n']);
    await vi.advanceTimersByTimeAsync(4000); // keep-alives at 2 s and 4 s; the line did not change
    expect(texts(t).slice(2)).toEqual(['WATCHDOG=1\n', 'WATCHDOG=1\n']);
    line = 'uplink disconnected, buffer 12 readings';
    await vi.advanceTimersByTimeAsync(1000);
    expect(texts(t).slice(4)).toEqual(['STATUS=uplink disconnected, buffer 12 readings\n']);
    // Stuck: no keep-alive, so systemd restarts the service after WatchdogSec.
    alive = false;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(texts(t).filter((x) => x === 'WATCHDOG=1\n')).toHaveLength(3);
    alive = true;
    await vi.advanceTimersByTimeAsync(2000);
    expect(texts(t).filter((x) => x === 'WATCHDOG=1\n')).toHaveLength(4);
    await s.stopping();
    const stoppedAt = t.sent.length;
    expect(texts(t).at(-1)).toBe('STOPPING=1\n');
    line = 'changed again';
    await vi.advanceTimersByTimeAsync(20_000);
    expect(t.sent).toHaveLength(stoppedAt);
    s.close();
    expect(t.closed()).toBe(true);
  });

  it('a probe that throws counts as not alive', async () => {
    const t = fakeTransport();
    const warn = vi.fn();
    const n = createSystemdNotifier({
      env: env({ WATCHDOG_USEC: '2000000' }),
      transport: t.transport,
      log: { warn },
    });
    startServiceNotifications(
      n,
      {
        statusLine: () => 'x',
        alive: () => {
          throw new Error('buffer gone');
        },
      },
      { statusIntervalMs: 1000 },
    );
    await vi.advanceTimersByTimeAsync(5000);
    // Only the one sent with READY at start; none while the probe fails.
    expect(texts(t).filter((x) => x === 'WATCHDOG=1\n')).toHaveLength(1);
    expect(warn).toHaveBeenCalledWith({}, expect.stringMatching(/withholding/));
    n.close();
  });

  it('outside systemd: no sends, and the probe is never asked', async () => {
    const statusLine = vi.fn(() => 'x');
    const alive = vi.fn(() => true);
    const s = startServiceNotifications(
      createSystemdNotifier({ env: {} }),
      { statusLine, alive },
      { statusIntervalMs: 10 },
    );
    await vi.advanceTimersByTimeAsync(1000);
    await s.stopping();
    s.close();
    expect(statusLine).not.toHaveBeenCalled();
    expect(alive).not.toHaveBeenCalled();
  });
});

/**
 * The systemd-notify adapter against a stand-in program first on PATH that records how it was run:
 * its arguments and its environment. (A real notify socket is an AF_UNIX datagram socket, which Node
 * cannot open; test/edge/systemd-notify.test.ts uses the real program with one when it can.)
 */
describe('createNotifyProgramTransport', () => {
  let dir: string;
  let log: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'fb-notify-'));
    log = join(dir, 'calls.log');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A `systemd-notify` that appends `socket|secret|args` to the log, then runs `then` (shell). */
  function program(then = 'exit 0'): string {
    const file = join(dir, 'systemd-notify');
    writeFileSync(
      file,
      `#!/bin/sh\nprintf '%s|%s|%s\\n' "$NOTIFY_SOCKET" "\${FB_TEST_SECRET-absent}" "$*" >> '${log}'\n${then}\n`,
    );
    chmodSync(file, 0o755);
    return file;
  }
  const calls = () => readFileSync(log, 'utf8').trim().split('\n');

  it('runs systemd-notify --pid=<pid> KEY=VALUE..., one at a time, in order, with only NOTIFY_SOCKET in its environment', async () => {
    process.env.FB_TEST_SECRET = 'do-not-leak';
    try {
      program();
      const found = findProgram('systemd-notify', `${dir}:/usr/bin:/bin`);
      expect(found).toBe(join(dir, 'systemd-notify'));
      const t = createNotifyProgramTransport({ program: found as string, pid: 4242 });
      await Promise.all([
        t.send('/run/systemd/notify', notifyMessage({ READY: 1, STATUS: 'up, buffer 0 readings' })),
        t.send('/run/systemd/notify', notifyMessage({ WATCHDOG: 1 })),
        t.send('\0/org/systemd/notify', notifyMessage({ STOPPING: 1 })),
      ]);
      t.close();
      expect(calls()).toEqual([
        '/run/systemd/notify|absent|--pid=4242 READY=1 STATUS=up, buffer 0 readings',
        '/run/systemd/notify|absent|--pid=4242 WATCHDOG=1',
        '@/org/systemd/notify|absent|--pid=4242 STOPPING=1',
      ]);
      await expect(t.send('/run/systemd/notify', notifyMessage({ WATCHDOG: 1 }))).rejects.toThrow(/closed/);
    } finally {
      delete process.env.FB_TEST_SECRET;
    }
  });

  it('passes each field as one argument, spaces and all, without a shell', async () => {
    program();
    const t = createNotifyProgramTransport({ program: join(dir, 'systemd-notify'), pid: 1 });
    await t.send('/s', notifyMessage({ STATUS: "it's `$(touch /tmp/x)` ; rm -rf /" }));
    expect(calls()).toEqual(["/s|absent|--pid=1 STATUS=it's `$(touch /tmp/x)` ; rm -rf /"]);
  });

  it("rejects with the program's complaint when it fails, and the notifier logs it without throwing", async () => {
    program("echo 'Failed to notify init system: Connection refused' >&2; exit 1");
    const t = createNotifyProgramTransport({ program: join(dir, 'systemd-notify') });
    await expect(t.send('/s', notifyMessage({ READY: 1 }))).rejects.toThrow(
      /systemd-notify failed: Failed to notify init system: Connection refused/,
    );
    const warn = vi.fn();
    const n = createSystemdNotifier({ env: { NOTIFY_SOCKET: '/s' }, transport: t, log: { warn } });
    await expect(n.ready()).resolves.toBeUndefined();
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ err: expect.stringMatching(/Connection refused/) }),
      'sd_notify failed',
    );
  });

  it('kills a program that hangs, and bounds how many notifications wait', async () => {
    program('sleep 30');
    const t = createNotifyProgramTransport({
      program: join(dir, 'systemd-notify'),
      timeoutMs: 300,
      maxQueued: 1,
    });
    const first = t.send('/s', notifyMessage({ WATCHDOG: 1 }));
    await expect(t.send('/s', notifyMessage({ WATCHDOG: 1 }))).rejects.toThrow(
      /1 notifications still waiting/,
    );
    await expect(first).rejects.toThrow(/killed after 300 ms/);
  });

  it('is what loadNotifyTransport picks under systemd when unix-dgram is not installed', async () => {
    program();
    const path = `${dir}:/usr/bin:/bin`;
    expect(await loadNotifyTransport({ PATH: path }, 7)).toBeUndefined(); // not under systemd
    expect(await loadNotifyTransport({ NOTIFY_SOCKET: '/s', PATH: '/nonexistent' }, 7)).toBeUndefined();
    const t = await loadNotifyTransport({ NOTIFY_SOCKET: '/s', PATH: path }, 7);
    await t?.send('/s', notifyMessage({ READY: 1 }));
    expect(calls()).toEqual(['/s|absent|--pid=7 READY=1']);
  });
});
