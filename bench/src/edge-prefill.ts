/**
 * Fills an edge agent's buffer file with `count` readings through the agent's own `SqliteOutbox`
 * (the same rows the agent would write), as a separate process so the bench process stays small.
 * Prints `progress` and `done`.
 */
import { statSync } from 'node:fs';
import { SqliteOutbox } from '@fieldbeam/edge';
import { type Observation, observationId } from '@fieldbeam/protocol';
import { emit } from './lib/child.js';

async function main(args: { path: string; count: number; edge: string; stations: number }): Promise<void> {
  const outbox = new SqliteOutbox({
    path: args.path,
    capacityBytes: 64 * 1024 ** 3,
    policy: 'block',
    commitWindowMs: 0,
    // The agent reopens the file with its own setting; how it was filled does not matter.
    synchronous: 'NORMAL',
    keepRejects: 10,
  });
  const started = performance.now();
  const chunk = 10_000;
  const baseMs = Date.now() - 3_600_000;
  let lastReport = started;
  for (let done = 0; done < args.count; ) {
    const n = Math.min(chunk, args.count - done);
    const observations: Observation[] = new Array(n);
    // What the agent's toObservation makes of the bench sensor's reading (no sensor time: receipt
    // time, flagged edge_time), with one receipt time per chunk to keep the prefill quick.
    const time = new Date(baseMs + Math.floor(done / 100)).toISOString();
    for (let i = 0; i < n; i++) {
      const seq = done + i;
      const station = `p${seq % args.stations}`;
      observations[i] = {
        id: observationId({ source: 'mqtt', station, variable: 'bench_sequence', time, value: seq }),
        source: 'mqtt',
        edge: args.edge,
        station,
        variable: 'bench_sequence',
        value: seq,
        unit: '1',
        time,
        received: time,
        quality: ['edge_time'],
      };
    }
    await outbox.append(observations);
    done += n;
    if (performance.now() - lastReport > 2000 || done === args.count) {
      lastReport = performance.now();
      void emit({ type: 'progress', done, ms: lastReport - started });
    }
  }
  const stats = outbox.stats();
  await outbox.close();
  await emit({
    type: 'done',
    depth: stats.depth,
    bytes: stats.bytes,
    fileBytes: statSync(args.path).size,
    ms: performance.now() - started,
  });
}

main(JSON.parse(process.argv[2] ?? '{}')).then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`prefill: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
