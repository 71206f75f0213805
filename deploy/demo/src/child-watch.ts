import type { Spawned } from '@fieldbeam/test/harness';

/** A process of the demo that ended while the demo was running. */
export interface ChildExit {
  name: string;
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Its last lines of output (logs, a stack trace). */
  lastLines: string[];
}

/**
 * The processes the demo started, watched: the first one to exit before the demo stops ends the demo
 * (`exited`), because the rest cannot work without it and a status line of question marks would hide
 * why. Exits after `stopping()` are the demo's own doing and are not reported.
 */
export class ChildWatch {
  #stopping = false;
  #report: (exit: ChildExit) => void = () => {};
  /** Resolves with the first unexpected exit; never settles while every child runs. */
  readonly exited: Promise<ChildExit> = new Promise((resolve) => {
    this.#report = resolve;
  });

  watch(name: string, p: Spawned, lines = 15): void {
    const report = (code: number | null, signal: NodeJS.Signals | null) => {
      // Ctrl-C at a terminal reaches the children too, and one may end before the demo has seen its
      // own SIGINT: a moment's wait tells that from a process ending on its own.
      setTimeout(() => {
        if (this.#stopping) return;
        this.#report({ name, pid: p.pid, code, signal, lastLines: lastLines(p.output(), lines) });
      }, 250);
    };
    if (p.child.exitCode !== null || p.child.signalCode !== null)
      report(p.child.exitCode, p.child.signalCode);
    else p.child.once('exit', report);
  }

  /** From now on children exit because the demo stops them. */
  stopping(): void {
    this.#stopping = true;
  }

  /** `promise`, unless a child exits first: then a rejection saying which and why. */
  async unlessExited<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([
      promise,
      this.exited.then((exit) => {
        throw new Error(describeExit(exit));
      }),
    ]);
  }
}

function lastLines(output: string, n: number): string[] {
  return output
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '')
    .slice(-n);
}

/** Which process ended and how, with its last output, for the person running the demo. */
export function describeExit(exit: ChildExit): string {
  const how =
    exit.signal !== null ? `was killed by ${exit.signal}` : `exited with status ${exit.code ?? 'unknown'}`;
  const tail =
    exit.lastLines.length > 0
      ? `; its last output:\n${exit.lastLines.map((l) => `  | ${l}`).join('\n')}`
      : ' without any output';
  return `the ${exit.name} (pid ${exit.pid}) ${how}${tail}`;
}
