import { readFileSync } from 'node:fs';
import {
  addEdge,
  CentralSensorStore,
  collectorSeed,
  ensureSensorBucket,
  ensureStreams,
} from '@fieldbeam/cloud';
import { createCentralSensors, parseEdgeConfig } from '@fieldbeam/edge';
import { centralSensors, streams, subjects } from '@fieldbeam/protocol';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, nkeyAuthenticator } from '@nats-io/transport-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServer, startNatsServer, type TempDir, tempDir, waitFor } from '../harness/index.js';

/**
 * The edge's central sensor config read by polling (direct gets at connect and every pollMs) under
 * its real NATS identity: a value is applied once per revision, not at every poll; a deleted key
 * leaves no central sensors from it; the edge creates no consumer.
 */
const enc = (s: string) => new TextEncoder().encode(s);
let nats: NatsServer;
let dir: TempDir;
let collector: NatsConnection;
let edge: NatsConnection;
let store: CentralSensorStore;
const sensor = (topic: string) => ({ topic, decoder: { type: 'zigbee2mqtt' as const } });

beforeAll(async () => {
  dir = tempDir();
  const idDir = `${dir.path}/identity`;
  const a = addEdge(idDir, 'gw-a');
  nats = await startNatsServer({ extraConfig: readFileSync(a.files.authorization, 'utf8') });
  collector = await connect({
    servers: nats.url,
    authenticator: nkeyAuthenticator(enc(collectorSeed(idDir))),
  });
  await ensureStreams(await jetstreamManager(collector), Object.values(streams));
  store = await CentralSensorStore.open(collector);
  await store.change('edge.gw-a', () => ({ sensors: [sensor('a/+station')] }));
  edge = await connect({
    servers: nats.url,
    authenticator: nkeyAuthenticator(enc(a.seed)),
    inboxPrefix: subjects.inbox('gw-a'),
  });
});
afterAll(async () => {
  await edge?.close();
  await collector?.close();
  await nats?.close();
  dir?.remove();
});

describe('central sensor config polling', () => {
  it('applies each revision once, a deleted key as no central sensors, with no consumer', async () => {
    // Every direct get the edge sends (the collector may subscribe to the API subjects).
    let gets = 0;
    const seen = collector.subscribe(`$JS.API.DIRECT.GET.${centralSensors.stream}.>`, {
      callback: () => {
        gets++;
      },
    });
    await collector.flush();
    const { auto_register } = parseEdgeConfig({ edge: 'gw-a', nats: { servers: [nats.url] } });
    const central = createCentralSensors({
      edge: 'gw-a',
      dataDir: dir.path,
      local: { sensors: [], autoRegister: auto_register },
      log: pino({ level: 'silent' }),
      metrics: { centralConfigRefused: { inc() {} }, centralConfigRevision: { set() {} } } as never,
      pollMs: 100,
    });
    const applied: string[][] = [];
    central.watch(
      async () => edge,
      (merged) => applied.push(merged.sensors.map((s) => s.topic)),
    );
    try {
      await waitFor('first apply', () => (applied.length > 0 ? true : undefined), 10_000);
      expect(applied).toEqual([['a/+station']]);
      // Several polls later (two gets each), the same revision was not applied again.
      const after = gets;
      await waitFor('more polls', () => (gets >= after + 6 ? true : undefined), 10_000);
      expect(applied).toEqual([['a/+station']]);

      const kv = await ensureSensorBucket(collector);
      const deleted = await kv.delete('edge.gw-a').then(async () => (await kv.get('edge.gw-a'))?.revision);
      await waitFor('apply after delete', () => (applied.length > 1 ? true : undefined), 10_000);
      expect(applied).toEqual([['a/+station'], []]);
      expect(central.configState()).toMatchObject({ revision: deleted, error: null });

      const jsm = await jetstreamManager(collector);
      const consumers: string[] = [];
      for await (const c of jsm.consumers.list(centralSensors.stream)) consumers.push(c.name);
      expect(consumers).toEqual([]);
    } finally {
      seen.unsubscribe();
      await central.close();
    }
  });
});
