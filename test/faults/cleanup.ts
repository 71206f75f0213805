/**
 * Everything a fault run starts registers how to undo it here, so that a failure, Ctrl-C or SIGTERM
 * still stops the processes (by their pid) and removes namespaces and folders.
 */
const active = new Set<() => Promise<void>>();

export function onCleanup(fn: () => Promise<void>): () => void {
  active.add(fn);
  return () => active.delete(fn);
}

export async function cleanupAll(): Promise<void> {
  const fns = [...active].reverse();
  active.clear();
  for (const fn of fns) {
    try {
      await fn();
    } catch {}
  }
}

let installed = false;
/** For the command-line runner: on SIGINT/SIGTERM, clean up and exit. */
export function cleanupOnSignals(): void {
  if (installed) return;
  installed = true;
  const handler = (sig: NodeJS.Signals) => {
    process.stderr.write(`\n${sig}: stopping everything this run started...\n`);
    const hard = setTimeout(() => process.exit(130), 30_000);
    hard.unref();
    void cleanupAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}
