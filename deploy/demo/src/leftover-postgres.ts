import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const commandLine = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
};

/**
 * Stops a Postgres still running on the data folder `dir` (its postmaster.pid), as one is after its
 * collector was killed: the embedded Postgres outlives its parent and would keep the demo's port and
 * folder. A collector that stopped normally took its Postgres with it: then there is nothing to do.
 * Fast shutdown first (SIGINT), immediate (SIGQUIT) if it is still there after `graceMs`.
 */
export async function stopLeftoverPostgres(dir: string, graceMs = 15_000): Promise<number | undefined> {
  let pid: number;
  try {
    pid = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return undefined;
  }
  // A stale file may name a pid another program has now.
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid) || !commandLine(pid).includes('postgres')) {
    return undefined;
  }
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + graceMs;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGQUIT');
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return pid;
}
