import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { withoutServiceManagerEnv } from './systemd-notify.js';

export type ClockState = 'synced' | 'unsynced' | 'unknown';

/**
 * How the agent learns whether the wall clock can be trusted. A Pi has no real-time clock: until NTP
 * syncs, it may believe it is 1970 or the time of its last shutdown.
 * - `auto`: systemd-timesyncd's `/run/systemd/timesync/synchronized` flag, else `timedatectl`;
 *   `unknown` when neither exists (readings are then not flagged).
 * - `file:<path>`: synced while the file exists (for chrony hooks, other daemons, and tests).
 * - `none`: trust the clock.
 */
export type ClockCheck = 'auto' | 'none' | `file:${string}`;

/** Where the `auto` check looks; the defaults are the system's (tests point them elsewhere). */
export interface ClockProbeOptions {
  /** The agent's environment; timedatectl gets it without systemd's variables for the agent. */
  env?: NodeJS.ProcessEnv;
  /** systemd-timesyncd's flag file. */
  syncedFlag?: string;
  /** The program asked when the flag is absent (looked up on the env's `PATH`). */
  timedatectl?: string;
}

export function probeClock(check: ClockCheck, opts: ClockProbeOptions = {}): Promise<ClockState> {
  if (check === 'none') return Promise.resolve('synced');
  if (check.startsWith('file:')) return Promise.resolve(existsSync(check.slice(5)) ? 'synced' : 'unsynced');
  if (existsSync(opts.syncedFlag ?? '/run/systemd/timesync/synchronized')) return Promise.resolve('synced');
  return new Promise((resolve) => {
    execFile(
      opts.timedatectl ?? 'timedatectl',
      ['show', '-p', 'NTPSynchronized', '--value'],
      // With the agent's NOTIFY_SOCKET, a failing timedatectl (no D-Bus yet) would tell systemd
      // `ERRNO=112` as if the agent had failed.
      { timeout: 2000, env: withoutServiceManagerEnv(opts.env ?? process.env) },
      (err, out) => {
        if (err) return resolve('unknown');
        const v = out.trim();
        resolve(v === 'yes' ? 'synced' : v === 'no' ? 'unsynced' : 'unknown');
      },
    );
  });
}

export interface ClockMonitor {
  readonly state: ClockState;
  close(): void;
}

/** Polls the clock state; calls `onSynced` on each change from `unsynced` to `synced`. */
export async function startClockMonitor(
  check: ClockCheck,
  intervalMs: number,
  onChange: (state: ClockState, previous: ClockState) => void,
): Promise<ClockMonitor> {
  let state = await probeClock(check);
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void probeClock(check)
      .then((next) => {
        if (next !== state) {
          const previous = state;
          state = next;
          onChange(next, previous);
        }
      })
      .finally(() => {
        busy = false;
      });
  }, intervalMs);
  timer.unref();
  return {
    get state() {
      return state;
    },
    close: () => clearInterval(timer),
  };
}
