/**
 * A collector's streams and sensor bucket with FB_STREAM_REPLICAS on a 3-node cluster, and the
 * per-identity nkey authorization of `fieldbeam-cloud edge add` on every node: an edge connected to any
 * node publishes as itself and nothing else.
 */
import { readFileSync } from 'node:fs';
import { addEdge, CloudErrorCode, collectorSeed, ensureSensorBucket, ensureStreams } from '@fieldbeam/cloud';
import { streams, subjects } from '@fieldbeam/protocol';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, nkeyAuthenticator } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type NatsCluster,
  type NatsServer,
  startNatsCluster,
  startNatsServer,
  type TempDir,
  tempDir,
} from '../harness/index.js';

const enc = (s: string) => new TextEncoder().encode(s);
const specs = (replicas: number) => Object.values(streams).map((s) => ({ ...s, replicas }));
let cluster: NatsCluster;
let dir: TempDir;
let collector: NatsConnection;
const seeds: Record<string, string> = {};

beforeAll(async () => {
  dir = tempDir();
  const idDir = `${dir.path}/identity`;
  seeds.a = addEdge(idDir, 'cl-a').seed;
  const added = addEdge(idDir, 'cl-b');
  seeds.b = added.seed;
  cluster = await startNatsCluster({ extraConfig: readFileSync(added.files.authorization, 'utf8') });
  collector = await connect({
    servers: cluster.urls,
    authenticator: nkeyAuthenticator(enc(collectorSeed(idDir))),
    inboxPrefix: subjects.inbox('collector'),
  });
});
afterAll(async () => {
  await collector?.close();
  await cluster?.stop();
  dir?.remove();
});

describe('streams and identities on a 3-node cluster', () => {
  it('makes every stream and the sensor bucket with 3 replicas, raising those made with 1', async () => {
    const jsm = await jetstreamManager(collector);
    await ensureStreams(jsm, specs(1));
    await ensureSensorBucket(collector);
    const changes = await ensureStreams(jsm, specs(3));
    expect(changes.map((c) => c.changed.num_replicas)).toEqual(
      Object.values(streams).map(() => ({ from: 1, to: 3 })),
    );
    await ensureSensorBucket(collector, 3);
    for (const name of [...Object.values(streams).map((s) => s.name), 'KV_fb_sensors']) {
      const info = await jsm.streams.info(name);
      expect(info.config.num_replicas, name).toBe(3);
    }
    expect(await cluster.leaderOf(streams.OBS.name)).toMatch(/^n[123]$/);
  });

  it('lets an edge on any node publish as itself only', async () => {
    for (const [i, node] of cluster.nodes.entries()) {
      const nc = await connect({
        servers: node.url,
        authenticator: nkeyAuthenticator(enc(seeds.a ?? '')),
        inboxPrefix: subjects.inbox('cl-a'),
      });
      try {
        const js = jetstream(nc);
        const ack = await js.publish(subjects.obs('cl-a'), '{}', { msgID: `cl-a-${i}`, timeout: 10_000 });
        expect(ack.stream).toBe(streams.OBS.name);
        await expect(
          js.publish(subjects.obs('cl-b'), '{}', { msgID: `cl-a-as-b-${i}`, timeout: 3000 }),
        ).rejects.toThrow(/permission|timeout|no responders/i);
      } finally {
        await nc.close();
      }
    }
    // Nothing was stored under the other edge's subject.
    const info = await (await jetstreamManager(collector)).streams.info(streams.OBS.name, {
      subjects_filter: '>',
    });
    expect(Object.keys(info.state.subjects ?? {})).toEqual([subjects.obs('cl-a')]);
  });

  it('says which setting to change when a single server is asked for 3 replicas', async () => {
    let single: NatsServer | undefined;
    try {
      single = await startNatsServer();
      const nc = await connect({ servers: single.url });
      try {
        const err = await ensureStreams(await jetstreamManager(nc), specs(3)).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: CloudErrorCode.CONFIG_INVALID });
        expect((err as Error).message).toMatch(/FB_STREAM_REPLICAS must be 1 on a single nats-server/);
      } finally {
        await nc.close();
      }
    } finally {
      await single?.close();
    }
  });
});
