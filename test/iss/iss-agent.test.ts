import { createEdgeAgent, formatIssTimestamp, parseEdgeConfig } from '@fieldbeam/edge';
import { EdgeStatus } from '@fieldbeam/protocol';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The replay server is a test and demo tool outside the agent's package entry.
import { createTlcpReplayServer } from '../../edge/src/iss-replay/index.js';
import {
  type NatsServer,
  readObsStream,
  startNatsServer,
  type TempDir,
  tempDir,
  waitFor,
} from '../harness/index.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let nats: NatsServer;
let dir: TempDir;

beforeAll(async () => {
  nats = await startNatsServer({ streams: true });
  dir = tempDir();
});
afterAll(async () => {
  await nats?.close();
  dir?.remove();
});

const update = (item: string, value: string, atMs: number, statusClass = '24') => ({
  item,
  TimeStamp: formatIssTimestamp(atMs),
  Value: value,
  'Status.Class': statusClass,
  'Status.Indicator': '',
  'Status.Color': 'Green',
  CalibratedData: '',
});

describe('ISS readings through the agent', () => {
  it('go through the same outbox and forwarder into JetStream, with their TimeStamp as time', async () => {
    const server = await createTlcpReplayServer({ keepaliveMs: 1000 });
    const t0 = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    server.publish([update('TIME_000001', formatIssTimestamp(t0), t0)]);
    const agent = await createEdgeAgent(
      parseEdgeConfig({
        edge: 'gw-iss',
        data_dir: dir.path,
        nats: { servers: [nats.url] },
        mqtt: { host: '127.0.0.1', port: 0 },
        http: { host: '127.0.0.1', port: 0 },
        iss: { enabled: true, server_url: server.url, items: ['USLAB000058', 'S0000003'] },
      }),
      log,
    );
    try {
      // MERGE mode: a snapshot carries only the latest value per item, so wait until subscribed.
      await waitFor('the ISS subscription', async () => {
        const h = (await (await fetch(`http://127.0.0.1:${agent.httpPort}/healthz`)).json()) as {
          iss?: { subscribed?: boolean };
        };
        return h.iss?.subscribed ? true : undefined;
      });
      const sent: { variable: string; value: number; time: string }[] = [];
      for (let i = 1; i <= 20; i++) {
        const at = t0 + i * 250;
        const item = i % 2 ? 'USLAB000058' : 'S0000003';
        server.publish([update(item, String(700 + i), at)]);
        sent.push({ variable: `iss:${item}`, value: 700 + i, time: new Date(at).toISOString() });
      }
      const contents = await waitFor('ISS readings in JetStream', async () => {
        const c = await readObsStream(nats.url);
        return c.observations.length >= sent.length ? c : undefined;
      });
      expect(contents.duplicateIds.size).toBe(0);
      expect(contents.observations).toHaveLength(sent.length);
      const got = contents.observations.map((o) => ({ variable: o.variable, value: o.value, time: o.time }));
      expect(new Set(got.map((g) => JSON.stringify(g)))).toEqual(new Set(sent.map((s) => JSON.stringify(s))));
      expect(
        contents.observations.every(
          (o) => o.source === 'isslive' && o.station === 'ISS' && o.edge === 'gw-iss',
        ),
      ).toBe(true);
      const health = (await (await fetch(`http://127.0.0.1:${agent.httpPort}/healthz`)).json()) as {
        iss: { signal: string };
      };
      expect(health.iss.signal).toBe('acquired');
      // The heartbeat's ISS state (also in /healthz beside the source's own figures).
      expect(agent.status().iss).toMatchObject({ state: 'streaming', lastUpdateTime: expect.any(String) });
      expect(EdgeStatus.parse(agent.status()).iss?.state).toBe('streaming');
    } finally {
      await agent.close();
      await server.close();
    }
  }, 60_000);
});
