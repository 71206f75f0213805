import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { batchLimits, batchV2Limits, decodeBatchV2 } from '@fieldbeam/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultForwarderOptions, encodeBatch } from '../forward/forwarder.js';
import { toObservation } from '../readings.js';
import { SqliteOutbox } from './sqlite-outbox.js';

let dir: string;
let box: SqliteOutbox;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-take-bytes-'));
  box = new SqliteOutbox({
    path: join(dir, 'buf.sqlite'),
    capacityBytes: 256 * 1024 * 1024,
    policy: 'block',
    commitWindowMs: 0,
    synchronous: 'NORMAL',
    keepRejects: 10,
  });
});
afterEach(async () => {
  await box.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Text readings of characters that take three bytes each in UTF-8 (one UTF-16 unit each). */
const readings = (n: number, chars: number) =>
  Array.from({ length: n }, (_, i) =>
    toObservation(
      { source: 'mqtt', edge: 'gw', station: '観測所' },
      { variable: 'status', value: null, text: `${i}:${'雨'.repeat(chars)}`, unit: '' },
      1_765_000_000_000 + i,
    ),
  );

describe('a batch taken from the buffer', () => {
  it('fits the v1 message limit in bytes when its readings hold multi-byte text', async () => {
    await box.append(readings(500, 600));
    const batch = box.take(
      defaultForwarderOptions.maxBatchObservations,
      defaultForwarderOptions.maxBatchBytes,
    );
    expect(batch).toBeDefined();
    const data = encodeBatch('v1', 'gw', batch as NonNullable<typeof batch>);
    expect(data.byteLength).toBeLessThanOrEqual(batchLimits.maxBytes);
  });

  it('fits the v2 limits in bytes when its readings hold multi-byte text', async () => {
    await box.append(readings(400, 4000));
    const batch = box.take(batchV2Limits.maxObservations, batchV2Limits.maxRowBytes);
    expect(batch).toBeDefined();
    const data = encodeBatch('v2', 'gw', batch as NonNullable<typeof batch>);
    const decoded = decodeBatchV2(data);
    expect(decoded.ok ? '' : decoded.reason).toBe('');
  });
});
