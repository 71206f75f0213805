import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { probeClock } from './clock.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-clock-'));
});
afterEach(() => {
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
});

/** A stand-in `timedatectl` on PATH that records its environment and answers `answer`. */
function fakeTimedatectl(answer: string): string {
  const envFile = join(dir, 'env');
  const program = join(dir, 'timedatectl');
  writeFileSync(program, `#!/bin/sh\nenv > '${envFile}'\necho ${answer}\n`);
  chmodSync(program, 0o755);
  return envFile;
}

describe('probeClock auto', () => {
  it("runs timedatectl without the agent's systemd notify socket, watchdog or listen fds", async () => {
    const envFile = fakeTimedatectl('yes');
    // As under systemd: the agent's own environment carries the notify socket and watchdog.
    vi.stubEnv('PATH', `${dir}${delimiter}${process.env.PATH ?? ''}`);
    vi.stubEnv('NOTIFY_SOCKET', '/run/systemd/notify');
    vi.stubEnv('WATCHDOG_USEC', '30000000');
    vi.stubEnv('WATCHDOG_PID', String(process.pid));
    vi.stubEnv('LISTEN_FDS', '1');
    vi.stubEnv('FB_CLOCK_TEST_KEPT', 'kept');

    expect(await probeClock('auto', { syncedFlag: join(dir, 'no-such-flag') })).toBe('synced');
    const childEnv = readFileSync(envFile, 'utf8').split('\n');
    expect(childEnv).toContain('FB_CLOCK_TEST_KEPT=kept');
    for (const name of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_FDS'])
      expect(childEnv.filter((l) => l.startsWith(`${name}=`))).toEqual([]);
  });

  it('reads no and a failure as unsynced and unknown', async () => {
    fakeTimedatectl('no');
    const env = { PATH: `${dir}${delimiter}${process.env.PATH ?? ''}` };
    const syncedFlag = join(dir, 'no-such-flag');
    expect(await probeClock('auto', { env, syncedFlag })).toBe('unsynced');
    expect(await probeClock('auto', { env, syncedFlag, timedatectl: join(dir, 'missing') })).toBe('unknown');
    writeFileSync(syncedFlag, '');
    expect(await probeClock('auto', { env, syncedFlag, timedatectl: join(dir, 'missing') })).toBe('synced');
  });
});
