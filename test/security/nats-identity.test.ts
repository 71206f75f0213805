import { readFileSync } from 'node:fs';
import { addEdge, collectorSeed, ensureStreams } from '@fieldbeam/cloud';
import { createEdgeAgent, parseEdgeConfig } from '@fieldbeam/edge';
import { streams } from '@fieldbeam/protocol';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type NatsServer,
  readObsStream,
  startNatsServer,
  type TempDir,
  tempDir,
  waitFor,
} from '../harness/index.js';

const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const enc = (s: string) => new TextEncoder().encode(s);
let nats: NatsServer;
let dir: TempDir;
let seedA: string;

beforeAll(async () => {
  dir = tempDir();
  const idDir = `${dir.path}/identity`;
  seedA = addEdge(idDir, 'gw-a').seed;
  const added = addEdge(idDir, 'gw-b');
  nats = await startNatsServer({ extraConfig: readFileSync(added.files.authorization, 'utf8') });
  const nc = await connect({
    servers: nats.url,
    authenticator: nkeyAuthenticator(enc(collectorSeed(idDir))),
  });
  await ensureStreams(await jetstreamManager(nc), Object.values(streams));
  await nc.close();
});
afterAll(async () => {
  await nats?.close();
  dir?.remove();
});

describe('per-edge NATS identity', () => {
  it('lets an edge publish as itself through the agent', async () => {
    const agent = await createEdgeAgent(
      parseEdgeConfig({
        edge: 'gw-a',
        data_dir: `${dir.path}/a`,
        nats: { servers: [nats.url], nkey_seed: seedA },
        mqtt: { host: '127.0.0.1', port: 0 },
        http: { host: '127.0.0.1', port: 0 },
        sensors: [
          { topic: 's/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
        ],
      }),
      log,
    );
    try {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`);
      await c.publishAsync('s/x/t', '7', { qos: 1 });
      await c.endAsync();
      await waitFor('the reading in the stream', async () =>
        (
          await readObsStream(nats.url, {
            authenticator: nkeyAuthenticator(enc(collectorSeed(`${dir.path}/identity`))),
          })
        ).observations.length === 1
          ? true
          : undefined,
      );
    } finally {
      await agent.close();
    }
  });

  it("refuses edge A publishing on edge B's subjects", async () => {
    const nc = await connect({ servers: nats.url, authenticator: nkeyAuthenticator(enc(seedA)) });
    const errors: string[] = [];
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.error));
    })();
    try {
      const js = jetstream(nc, { timeout: 1500 });
      await expect(js.publish('fb.obs.gw-b', '{}', { msgID: 'spoof' })).rejects.toThrow();
      nc.publish('fb.edge.gw-b.status', '{}');
      await nc.flush();
      await waitFor('permission violations', () => (errors.length >= 2 ? true : undefined), 5000);
      expect(errors.join('\n')).toMatch(/Permissions Violation for Publish to "fb\.obs\.gw-b"/i);
      // No stream management either.
      await expect(jetstreamManager(nc, { timeout: 1500 })).rejects.toThrow();
    } finally {
      await nc.close();
    }
  });

  it('refuses an unknown key', async () => {
    const stranger = new TextDecoder().decode(createUser().getSeed());
    await expect(
      connect({ servers: nats.url, authenticator: nkeyAuthenticator(enc(stranger)), reconnect: false }),
    ).rejects.toThrow(/Authorization/i);
  });
});
