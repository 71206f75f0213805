import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { natsPerTest, type Spawned, spawnProcess, startEdgeProcess, waitFor } from '../harness/index.js';

/**
 * The agent under a stand-in for systemd's notify socket: an AF_UNIX datagram socket, which Node
 * cannot open, bound by a few lines of Python, with the real `systemd-notify` program (systemd 252
 * on Debian 12) sending to it. The socket closes the fd that comes with systemd-notify's
 * `BARRIER=1`, which is how PID 1 tells it the messages before were read.
 * deploy/setup.sh installs both (Debian packages systemd and python3).
 */

const RECEIVER = `
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"ready": True}), flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(64 * 4) + socket.CMSG_SPACE(12))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            for i in range(0, len(data) - len(data) % 4, 4):
                os.close(int.from_bytes(data[i:i + 4], sys.byteorder))
    print(json.dumps({"msg": msg.decode()}), flush=True)
`;

const servers = natsPerTest();
let receiver: Spawned | undefined;

afterEach(async () => {
  await receiver?.stop();
});

/** Starts the receiver on a socket in the test's folder; `messages()` are those received so far. */
async function startReceiver(): Promise<{ socket: string; messages: () => string[] }> {
  const socket = join(servers.dir.path, 'notify.sock');
  const script = join(servers.dir.path, 'receiver.py');
  writeFileSync(script, RECEIVER);
  const r = spawnProcess('python3', ['-u', script, socket]);
  receiver = r;
  await waitFor('the receiver', () => (r.output().includes('"ready"') ? true : undefined));
  const messages = () =>
    r
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{"msg"'))
      .map((l) => (JSON.parse(l) as { msg: string }).msg);
  return { socket, messages };
}

describe('systemd notifications with the real systemd-notify', () => {
  it('READY=1 with MAINPID and a status line, WATCHDOG=1 while running, STOPPING=1 on SIGTERM', async () => {
    const { socket, messages } = await startReceiver();

    const edge = await startEdgeProcess(
      servers.dir.path,
      { edge: 'gw-sd', nats: { servers: [servers.nats.url] }, status_interval_ms: 500 },
      // WatchdogSec=2s: keep-alives every second.
      { env: { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '2000000' } },
    );
    const pid = edge.process.pid;
    try {
      const ready = await waitFor('READY=1', () => messages().find((m) => m.includes('READY=1')));
      expect(ready.split('\n')).toEqual(
        expect.arrayContaining([
          `MAINPID=${pid}`,
          'READY=1',
          expect.stringMatching(/^STATUS=uplink \w+, buffer 0 readings/),
        ]),
      );
      await waitFor('two keep-alives', () =>
        messages().filter((m) => m.split('\n').includes('WATCHDOG=1')).length >= 2 ? true : undefined,
      );
    } finally {
      await edge.stop();
    }
    await waitFor('STOPPING=1', () =>
      messages().some((m) => m.split('\n').includes('STOPPING=1')) ? true : undefined,
    );
    expect(edge.process.child.exitCode).toBe(0);
  }, 60_000);

  it("a failing timedatectl run by the clock check tells systemd nothing in the agent's name", async () => {
    // Here timedatectl fails as on a Pi before D-Bus is up ("Failed to connect to bus: Host is
    // down"). systemd's tools report such a failure as ERRNO=<n> to $NOTIFY_SOCKET when they have one.
    const { socket, messages } = await startReceiver();
    const edge = await startEdgeProcess(
      servers.dir.path,
      {
        edge: 'gw-clock-sd',
        nats: { servers: [servers.nats.url] },
        clock: { sync_check: 'auto', check_interval_ms: 200 },
      },
      { env: { NOTIFY_SOCKET: socket } },
    );
    try {
      // The first clock check ran (and failed: state unknown) before the agent said READY=1.
      await waitFor('READY=1', () => messages().find((m) => m.split('\n').includes('READY=1')));
      expect((await edge.status()).clock).toBe('unknown');
      expect(messages().filter((m) => m.includes('ERRNO='))).toEqual([]);
    } finally {
      await edge.stop();
    }
    await waitFor('STOPPING=1', () =>
      messages().some((m) => m.split('\n').includes('STOPPING=1')) ? true : undefined,
    );
    // Every clock check the agent ran meanwhile failed the same way.
    expect(messages().filter((m) => m.includes('ERRNO='))).toEqual([]);
  }, 60_000);
});
