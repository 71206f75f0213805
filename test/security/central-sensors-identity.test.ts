import { readFileSync } from 'node:fs';
import { addEdge, CentralSensorStore, collectorSeed, ensureStreams } from '@fieldbeam/cloud';
import { centralSensors, streams, subjects } from '@fieldbeam/protocol';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection, nkeyAuthenticator } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServer, startNatsServer, type TempDir, tempDir, waitFor } from '../harness/index.js';

/**
 * The central sensor bucket under real per-edge identities: an edge reads its own key and `all`
 * (direct get only: no consumer, see central-sensors-consumers.test.ts), and nothing else of the
 * bucket; it cannot write it.
 */
const enc = (s: string) => new TextEncoder().encode(s);
let nats: NatsServer;
let dir: TempDir;
const seeds: Record<string, string> = {};
const sensor = (topic: string) => ({ topic, decoder: { type: 'zigbee2mqtt' as const } });

beforeAll(async () => {
  dir = tempDir();
  const idDir = `${dir.path}/identity`;
  seeds['gw-a'] = addEdge(idDir, 'gw-a').seed;
  const last = addEdge(idDir, 'gw-b');
  seeds['gw-b'] = last.seed;
  nats = await startNatsServer({ extraConfig: readFileSync(last.files.authorization, 'utf8') });
  const nc = await connect({
    servers: nats.url,
    authenticator: nkeyAuthenticator(enc(collectorSeed(idDir))),
  });
  await ensureStreams(await jetstreamManager(nc), Object.values(streams));
  const store = await CentralSensorStore.open(nc);
  await store.change('edge.gw-a', () => ({ sensors: [sensor('a/+station')] }));
  await store.change('edge.gw-b', () => ({ sensors: [sensor('secret-of-b/+station')] }));
  await store.change('all', () => ({ sensors: [sensor('fleet/+station')] }));
  await nc.close();
});
afterAll(async () => {
  await nats?.close();
  dir?.remove();
});

/** A connection as an edge, with the errors the server sent it (permission violations). */
async function asEdge(id: string): Promise<{ nc: NatsConnection; kv: KV; errors: string[] }> {
  const nc = await connect({
    servers: nats.url,
    authenticator: nkeyAuthenticator(enc(seeds[id] as string)),
    inboxPrefix: subjects.inbox(id),
  });
  const errors: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.error));
  })();
  const js = jetstream(nc, { timeout: 1500, watcherPrefix: subjects.inbox(id) });
  const kv = await new Kvm(js).open(centralSensors.bucket, { allow_direct: true });
  return { nc, kv, errors };
}

/** The first value a watch of `key` delivers. */
async function firstWatched(kv: KV, key: string): Promise<string> {
  const iter = await kv.watch({ key });
  try {
    for await (const e of iter) return e.string();
    throw new Error('watch ended');
  } finally {
    iter.stop();
  }
}

describe('central sensor config permissions', () => {
  it('lets an edge get its own key and the fleet-wide key, not watch them', async () => {
    const { nc, kv } = await asEdge('gw-a');
    try {
      await expect(firstWatched(kv, 'edge.gw-a')).rejects.toThrow();
      await expect(firstWatched(kv, 'all')).rejects.toThrow();
      expect((await kv.get('edge.gw-a'))?.string()).toContain('a/+station');
      expect((await kv.get('all'))?.string()).toContain('fleet/+station');
    } finally {
      await nc.close();
    }
  });

  it("refuses an edge reading another edge's key, by watch, direct get, wildcard or message get", async () => {
    const { nc, kv, errors } = await asEdge('gw-a');
    try {
      await expect(firstWatched(kv, 'edge.gw-b')).rejects.toThrow();
      await expect(firstWatched(kv, '>')).rejects.toThrow();
      await expect(kv.get('edge.gw-b')).rejects.toThrow();
      const other = centralSensors.subject('edge.gw-b');
      // The stream's message get and info take any subject in the request body: refused outright.
      await expect(
        nc.request(
          `$JS.API.STREAM.MSG.GET.${centralSensors.stream}`,
          JSON.stringify({ last_by_subj: other }),
          {
            timeout: 1500,
          },
        ),
      ).rejects.toThrow();
      await expect(
        nc.request(`$JS.API.STREAM.INFO.${centralSensors.stream}`, '', { timeout: 1500 }),
      ).rejects.toThrow();
      await waitFor('permission violations', () => (errors.length >= 3 ? true : undefined), 5000);
      expect(errors.join('\n')).toMatch(
        /Permissions Violation for Publish to "\$JS\.API\.DIRECT\.GET\.KV_fb_sensors\.\$KV\.fb_sensors\.edge\.gw-b"/,
      );
    } finally {
      await nc.close();
    }
  });

  it('refuses an edge writing the bucket, even its own key', async () => {
    const { nc, kv, errors } = await asEdge('gw-a');
    try {
      await expect(kv.put('edge.gw-a', JSON.stringify({ sensors: [] }))).rejects.toThrow();
      await expect(kv.put('all', JSON.stringify({ sensors: [] }))).rejects.toThrow();
      await expect(kv.delete('edge.gw-b')).rejects.toThrow();
      await waitFor('permission violations', () => (errors.length >= 3 ? true : undefined), 5000);
      expect(errors.join('\n')).toMatch(
        /Permissions Violation for Publish to "\$KV\.fb_sensors\.edge\.gw-a"/,
      );
    } finally {
      await nc.close();
    }
    // The values are unchanged.
    const { nc: b, kv: kvB } = await asEdge('gw-b');
    try {
      expect((await kvB.get('edge.gw-b'))?.string()).toContain('secret-of-b');
      expect((await kvB.get('all'))?.string()).toContain('fleet/+station');
    } finally {
      await b.close();
    }
  });
});
