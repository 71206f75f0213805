import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import {
  edgeCli,
  natsPerTest,
  readMetric,
  readObsStream,
  startEdgeProcess,
  waitFor,
} from '../harness/index.js';

const run = promisify(execFile);
const servers = natsPerTest();

const CAPACITY = 4 * 1024 * 1024;
const SHARE = 0.05;
const PAYLOAD_KEPT = 4096;
const GARBAGE = 200 * 1024;
const FLOOD = 300;
const GOOD = 100;

interface ShownReject {
  id: number;
  source: string;
  topic: string;
  reason: string;
  payload: string;
  payload_bytes: number;
  truncated: boolean;
}

describe('a flood of large bad messages', () => {
  it('keeps rejects within their share of the capacity, cut to 4 KiB, while a good sensor goes on', async () => {
    const edge = await startEdgeProcess(servers.dir.path, {
      nats: { servers: [servers.nats.url] },
      buffer: { capacity_bytes: CAPACITY, reject_share: SHARE, reject_payload_bytes: PAYLOAD_KEPT },
      sensors: [
        { topic: 's/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
      ],
    });
    const url = `mqtt://127.0.0.1:${edge.mqttPort}`;
    const attacker = await mqtt.connectAsync(url, { clientId: 'attacker' });
    const sensor = await mqtt.connectAsync(url, { clientId: 'good-sensor' });
    try {
      // 60 MB of payloads that are not numbers, on a sensor's topic: each is a reject.
      const garbage = Buffer.alloc(GARBAGE, 'z');
      const flood = (async () => {
        for (let i = 0; i < FLOOD; i += 20)
          await Promise.all(
            Array.from({ length: 20 }, () => attacker.publishAsync('s/bad/t', garbage, { qos: 1 })),
          );
      })();
      const good = (async () => {
        for (let i = 0; i < GOOD; i++) await sensor.publishAsync('s/good/t', String(i), { qos: 1 });
      })();
      await Promise.all([flood, good]);

      expect(await readMetric(edge.httpPort, 'fb_edge_rejected_total')).toBe(FLOOD);
      // The agent runs; the CLI reads the same file beside it. The last rejects are written with the
      // next commit (at most 50 ms later): every one is then either kept or counted as dropped.
      const dropped = () => readMetric(edge.httpPort, 'fb_edge_rejects_dropped_total', 'limit="bytes"');
      const kept = await waitFor('every reject kept or dropped', async () => {
        const { stdout } = await run(process.execPath, [
          edgeCli,
          'rejects',
          '--config',
          edge.configFile,
          '--limit',
          '100000',
        ]);
        const shown = stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as ShownReject);
        return shown.length + (await dropped()) === FLOOD ? shown : undefined;
      });
      expect(kept.length).toBeGreaterThan(0);
      for (const r of kept) {
        expect(r.reason).toBe(`a plain number payload is at most 64 bytes; got ${GARBAGE}`);
        expect(r.payload).toHaveLength(PAYLOAD_KEPT);
        expect(r.payload_bytes).toBe(GARBAGE);
        expect(r.truncated).toBe(true);
      }
      const keptBytes = kept.reduce(
        (s, r) => s + r.payload.length + r.topic.length + r.reason.length + r.source.length + 64,
        0,
      );
      expect(keptBytes).toBeLessThanOrEqual(CAPACITY * SHARE);
      // The oldest went first, counted.
      expect(await dropped()).toBeGreaterThan(0);
      expect(kept.map((r) => r.id)).toEqual(Array.from({ length: kept.length }, (_, i) => FLOOD - i));
      // Nothing of the flood is on disk beyond the bound (the old log kept 60 MB here).
      const data = join(servers.dir.path, 'data');
      expect(statSync(join(data, 'gw.buffer.sqlite')).size).toBeLessThan(CAPACITY);
      // Readings and rejects are the agent's alone.
      expect(statSync(data).mode & 0o777).toBe(0o700);
      for (const f of ['gw.buffer.sqlite', 'gw.buffer.sqlite-wal', 'gw.buffer.sqlite-shm'])
        expect([f, statSync(join(data, f)).mode & 0o777]).toEqual([f, 0o600]);

      const s = await waitFor('the good readings upstream', async () => {
        const got = await readObsStream(servers.nats.url);
        return got.observations.length >= GOOD ? got : undefined;
      });
      expect(s.observations.map((o) => o.value).sort((a, b) => Number(a) - Number(b))).toEqual(
        Array.from({ length: GOOD }, (_, i) => i),
      );
    } finally {
      await attacker.endAsync();
      await sensor.endAsync();
      await edge.stop();
    }
  }, 120_000);
});
