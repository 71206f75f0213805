import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import {
  type BufferThreadHandlers,
  createEdgeAgent,
  parseEdgeConfig,
  SqliteOutbox,
  startBufferThread,
} from '@fieldbeam/edge';
import type { Observation } from '@fieldbeam/protocol';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TempDir, tempDir } from '../harness/index.js';

let dir: TempDir;
beforeEach(() => {
  dir = tempDir();
});
afterEach(() => dir.remove());

// Nothing listens on port 1: the thread's uplink keeps retrying, which these tests do not need.
const config = () =>
  parseEdgeConfig(
    { edge: 'gw', data_dir: join(dir.path, 'data'), nats: { servers: ['nats://127.0.0.1:1'] } },
    {},
  );

const obs = (i: number): Observation => ({
  id: `gw:${i}`.padEnd(20, '0'),
  edge: 'gw',
  station: 's',
  source: 'mqtt',
  variable: 'x:seq',
  value: i,
  unit: '1',
  time: new Date(1_700_000_000_000 + i).toISOString(),
  received: new Date(1_700_000_000_000 + i).toISOString(),
});

function handlers() {
  const fatal: Error[] = [];
  const h: BufferThreadHandlers = {
    outbox: {
      corruptFile: () => {},
      rejectsDropped: () => {},
      deliveryClientsForgotten: () => {},
      retainedTopicsForgotten: () => {},
      dropped: () => {},
      checkpointFailed: () => {},
    },
    uplink: { sent: () => {}, unexpectedDuplicate: () => {}, error: () => {} },
    onFatal: (err) => fatal.push(err),
  };
  return { h, fatal };
}

/** A thread program of the test's own, in place of the buffer thread. */
function script(name: string, body: string): URL {
  const file = join(dir.path, name);
  writeFileSync(file, `import { parentPort } from 'node:worker_threads';\n${body}\n`);
  return pathToFileURL(file);
}

const READY = `parentPort.postMessage({ t: 'ready', bufferId: 'b', bufferStart: 1, report: { stats: {
  depth: 0, bytes: 0, capacityBytes: 1, oldestReceivedMs: null, dropped: 0, quarantined: 0, appended: 0, acked: 0 },
  duplicates: 0, retainedRepeats: 0 } });`;

describe('the buffer thread', () => {
  it('answers an append once it is committed, and on close commits every append still on its way', async () => {
    const cfg = config();
    const { h, fatal } = handlers();
    const box = await startBufferThread(cfg, 64 * 1024 * 1024, h);
    await box.append([obs(0)]);
    expect(box.stats().depth).toBe(1);
    // Its own heap comes with each report (prom-client's defaults see only the main thread's).
    const heap = box.threadHeap();
    expect(heap?.used).toBeGreaterThan(0);
    expect(heap?.total).toBeGreaterThanOrEqual(heap?.used ?? Number.POSITIVE_INFINITY);
    // Appends made just before close, still to be handed over: each is committed and answered.
    const pending = Array.from({ length: 500 }, (_, i) => box.appendOnce([obs(i + 1)]));
    await box.close();
    expect(await Promise.all(pending)).toEqual(pending.map(() => 'stored'));
    await expect(box.append([obs(999)])).rejects.toMatchObject({ code: 'FB_EDGE_BUFFER_CLOSED' });
    expect(fatal).toEqual([]);

    const file = new SqliteOutbox({
      path: join(cfg.data_dir, 'gw.buffer.sqlite'),
      capacityBytes: 64 * 1024 * 1024,
      policy: 'block',
      commitWindowMs: 2,
      synchronous: 'FULL',
      keepRejects: 10,
    });
    try {
      expect(file.stats().depth).toBe(501);
      expect(file.bufferId).toBe(box.bufferId);
    } finally {
      await file.close();
    }
  });

  it('refuses what waits on a thread that throws, says why, and reports it as fatal once', async () => {
    const { h, fatal } = handlers();
    const box = await startBufferThread(config(), 1024, h, {
      script: script(
        'throws.mjs',
        `${READY}\nparentPort.on('message', () => { throw new Error('the card stopped answering'); });`,
      ),
    });
    const waiting = [box.append([obs(1)]), box.appendOnce([obs(2)])];
    for (const w of waiting)
      await expect(w).rejects.toMatchObject({
        code: 'FB_EDGE_BUFFER_THREAD',
        message: expect.stringContaining('the card stopped answering'),
      });
    expect(fatal.map((e) => e.message)).toEqual([expect.stringContaining('the card stopped answering')]);
    expect(() => box.stats()).toThrow(/the card stopped answering/);
    await expect(box.append([obs(3)])).rejects.toMatchObject({ code: 'FB_EDGE_BUFFER_THREAD' });
    await box.close();
  });

  it('reports a thread that ends by itself as fatal, with its exit code', async () => {
    const { h, fatal } = handlers();
    const box = await startBufferThread(config(), 1024, h, {
      script: script('exits.mjs', `${READY}\nparentPort.on('message', () => process.exit(3));`),
    });
    await expect(box.append([obs(1)])).rejects.toMatchObject({ code: 'FB_EDGE_BUFFER_THREAD' });
    expect(fatal.map((e) => e.message)).toEqual([expect.stringContaining('(code 3)')]);
  });

  it('passes on what the thread reports while it opens the file, before it is ready', async () => {
    const { h } = handlers();
    const moved: string[] = [];
    h.outbox.corruptFile = (movedTo) => moved.push(movedTo);
    const box = await startBufferThread(config(), 1024, h, {
      script: script(
        'moved.mjs',
        `parentPort.postMessage({ t: 'outbox', event: { name: 'corruptFile', args: ['f.corrupt-1', 'not a database'] } });\n${READY}\nparentPort.on('message', () => {});`,
      ),
    });
    expect(moved).toEqual(['f.corrupt-1']);
    expect(box.bufferId).toBe('b');
  });

  it('fails to start with the cause when the thread cannot open the buffer', async () => {
    const { h } = handlers();
    await expect(
      startBufferThread(config(), 1024, h, {
        script: script('no-file.mjs', `throw new Error('unable to open database file');`),
      }),
    ).rejects.toThrow(/unable to open database file/);
  });

  it('the agent logs a failing buffer thread with its cause and stops, and the reading waiting on it is not acknowledged', async () => {
    const lines: { level: number; msg: string; err?: string; code?: string }[] = [];
    const log = pino(
      { level: 'info' },
      new Writable({
        write(chunk, _enc, done) {
          lines.push(JSON.parse(String(chunk)));
          done();
        },
      }),
    );
    const fatal: Error[] = [];
    const agent = await createEdgeAgent(
      parseEdgeConfig(
        {
          edge: 'gw',
          data_dir: join(dir.path, 'data'),
          nats: { servers: ['nats://127.0.0.1:1'] },
          mqtt: { host: '127.0.0.1', port: 0 },
          http: { host: '127.0.0.1', port: 0 },
          clock: { sync_check: 'none' },
          sensors: [{ topic: 'a/+station/v', decoder: { type: 'number', variable: 'x:v', unit: '1' } }],
        },
        {},
      ),
      log,
      {
        onFatal: (err) => fatal.push(err),
        bufferThreadScript: script(
          'agent-throws.mjs',
          `${READY}\nparentPort.on('message', (m) => { if (m.t === 'appends') throw new Error('the card stopped answering'); });`,
        ),
      },
    );
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`, { reconnectPeriod: 0 });
    try {
      const acked = client.publishAsync('a/s1/v', '1.5', { qos: 1 }).then(
        () => true,
        () => false,
      );
      const t0 = Date.now();
      while (fatal.length === 0 && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
      expect(fatal.map((e) => e.message)).toEqual([expect.stringContaining('the card stopped answering')]);
      const line = lines.find((l) => l.msg.startsWith('BUFFER THREAD FAILED'));
      expect(line).toMatchObject({ level: 60, code: 'FB_EDGE_BUFFER_THREAD' });
      expect(line?.err).toContain('the card stopped answering');
      expect(agent.alive()).toBe(false);
      // Refused, so no PUBACK: the connection ends without one.
      client.end(true);
      expect(await acked).toBe(false);
    } finally {
      client.end(true);
      await agent.close();
    }
  });
});
