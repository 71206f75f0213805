import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Readers of /proc/<pid> (Linux) for the processes a suite starts. */

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** Resident set size (VmRSS) in MiB, or NaN when the process is gone. */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

export interface IoCounters {
  /** Bytes passed to write-like syscalls (files and sockets). */
  wchar: number;
  /** Bytes the process caused to be sent to the storage layer (page cache dirtied, incl. fsync'd WAL). */
  writeBytes: number;
}

export function ioCounters(pid: number): IoCounters {
  try {
    const text = readFileSync(`/proc/${pid}/io`, 'utf8');
    const get = (k: string) => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    return { wchar: get('wchar'), writeBytes: get('write_bytes') };
  } catch {
    return { wchar: Number.NaN, writeBytes: Number.NaN };
  }
}

/** CPU seconds the whole machine has been busy (all cores; idle and iowait excluded), from /proc/stat. */
export function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    return (
      ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) /
      ticksPerSecond()
    );
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU cores used by each process between `start()` and `stop()`, plus `other`: what the rest of the
 * machine used meanwhile (busy time of all cores minus the listed processes and this one), so a run
 * disturbed by something else on the box shows it.
 */
export class CpuMeter {
  private readonly first = new Map<string, { pid: number; cpu: number }>();
  private t0 = 0;
  private machine0 = 0;
  constructor(private readonly pids: Record<string, number>) {}
  start(): this {
    this.t0 = performance.now();
    this.machine0 = machineBusySeconds();
    for (const [name, pid] of Object.entries({ ...this.pids, bench: process.pid })) {
      this.first.set(name, { pid, cpu: cpuSeconds(pid) });
    }
    return this;
  }
  stop(): Record<string, number> {
    const secs = (performance.now() - this.t0) / 1000;
    const out: Record<string, number> = {};
    let listed = 0;
    for (const [name, { pid, cpu }] of this.first) {
      out[name] = (cpuSeconds(pid) - cpu) / secs;
      listed += out[name] ?? 0;
    }
    out.other = Math.max(0, (machineBusySeconds() - this.machine0) / secs - listed);
    return out;
  }
}

/** Samples a process's RSS at a fixed interval. */
export class RssSampler {
  readonly samples: { at: number; mb: number }[] = [];
  private readonly timer: NodeJS.Timeout;
  constructor(
    private readonly pid: number,
    intervalMs = 200,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }
  private sample(): void {
    const mb = rssMb(this.pid);
    if (Number.isFinite(mb)) this.samples.push({ at: performance.now(), mb });
  }
  get last(): number {
    return this.samples[this.samples.length - 1]?.mb ?? Number.NaN;
  }
  /** Max over samples taken at or after `fromMs` (performance.now() time). */
  max(fromMs = 0): number {
    let m = Number.NaN;
    for (const s of this.samples) if (s.at >= fromMs && !(s.mb <= m)) m = s.mb;
    return m;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}
