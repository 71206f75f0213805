import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createSystemdNotifier,
  loadUnixDgramTransport,
  type NotifyTransport,
  notifyMessage,
  readNotifyEnv,
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
