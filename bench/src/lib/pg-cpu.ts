import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** CPU used by a Postgres cluster, read from /proc (Linux), for CPU time per row beside rates. */

function stat(pid: number): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The postmaster listening on `port`: the `postgres` process started with `-p <port>`. */
export function postmasterPid(port: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (!/postgres$/.test(args[0] ?? '')) continue;
      const at = args.indexOf('-p');
      if (at >= 0 && args[at + 1] === String(port)) return Number(name);
    } catch {}
  }
  return undefined;
}

/**
 * User + system CPU seconds of the postmaster and every backend so far: its own, its live children's,
 * and those of the children it has reaped (cutime, cstime).
 */
export function clusterCpuSeconds(postmaster: number): number {
  const own = stat(postmaster);
  if (!own) return Number.NaN;
  const tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s && Number(s[1]) === postmaster) ticks += Number(s[11]) + Number(s[12]);
  }
  return ticks / tck;
}
