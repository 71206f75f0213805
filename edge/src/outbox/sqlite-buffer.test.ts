import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toObservation } from '../readings.js';
import { SqliteOutbox } from './sqlite-outbox.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-buffer-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('readings written in one commit', () => {
  it('keep their order and take consecutive sequence numbers, however many come together', async () => {
    const commits: number[] = [];
    const box = new SqliteOutbox({
      path: join(dir, 'buf.sqlite'),
      capacityBytes: 64 * 1024 * 1024,
      policy: 'block',
      commitWindowMs: 0,
      synchronous: 'FULL',
      keepRejects: 10,
      onCommit: (c) => commits.push(c.readings),
    });
    const texts: string[] = [];
    const appends: Promise<void>[] = [];
    let n = 0;
    // Sizes around the chunks rows are written in (32 and 8 a statement, the rest one by one).
    for (const size of [1, 8, 33, 41, 3, 32, 7, 77]) {
      const batch = Array.from({ length: size }, () =>
        toObservation(
          { source: 'mqtt', edge: 'gw', station: `s${n % 3}` },
          { variable: 'v', value: n++, unit: '1', ...(n % 2 ? { timeMs: 1_765_000_000_000 } : {}) },
          1_765_000_000_100,
        ),
      );
      texts.push(...batch.map((o) => JSON.stringify(o)));
      appends.push(box.append(batch));
    }
    await Promise.all(appends);
    expect(commits).toEqual([texts.length]);
    const b = box.take(1000, 1 << 24);
    expect(b?.rows).toEqual(texts);
    expect((b?.last ?? 0) - (b?.first ?? 0) + 1).toBe(texts.length);
    await box.close();
  });
});
