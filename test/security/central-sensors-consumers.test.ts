import { readFileSync } from 'node:fs';
import { addEdge, CentralSensorStore, collectorSeed, ensureStreams } from '@fieldbeam/cloud';
import { centralSensors, streams, subjects } from '@fieldbeam/protocol';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, nkeyAuthenticator } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NatsServer, startNatsServer, type TempDir, tempDir } from '../harness/index.js';

/**
 * An edge reads its central sensor keys by direct get only. A consumer's deliver subject is in the
 * create request's body, which NATS permissions do not see: an edge allowed to create one could have
 * the server publish the key's value, in the account's name, on any subject (another edge's status,
 * another edge's observations, the JetStream API) and leave durable consumers behind. A direct get's
 * body must not name another key either.
 */
const enc = (s: string) => new TextEncoder().encode(s);
let nats: NatsServer;
let dir: TempDir;
let collector: NatsConnection;
const seeds: Record<string, string> = {};
const sensor = (topic: string) => ({ topic, decoder: { type: 'zigbee2mqtt' as const } });
const own = centralSensors.subject('edge.gw-a');
const otherKey = centralSensors.subject('edge.gw-b');

beforeAll(async () => {
  dir = tempDir();
  const idDir = `${dir.path}/identity`;
  seeds['gw-a'] = addEdge(idDir, 'gw-a').seed;
  const last = addEdge(idDir, 'gw-b');
  nats = await startNatsServer({ extraConfig: readFileSync(last.files.authorization, 'utf8') });
  collector = await connect({
    servers: nats.url,
    authenticator: nkeyAuthenticator(enc(collectorSeed(idDir))),
  });
  await ensureStreams(await jetstreamManager(collector), Object.values(streams));
  const store = await CentralSensorStore.open(collector);
  await store.change('edge.gw-a', () => ({ sensors: [sensor('a/+station')] }));
  await store.change('edge.gw-b', () => ({ sensors: [sensor('secret-of-b/+station')] }));
});
afterAll(async () => {
  await collector?.close();
  await nats?.close();
  dir?.remove();
});

async function asEdgeA(): Promise<NatsConnection> {
  return connect({
    servers: nats.url,
    authenticator: nkeyAuthenticator(enc(seeds['gw-a'] as string)),
    inboxPrefix: subjects.inbox('gw-a'),
  });
}

/** A consumer create of gw-a's own key delivering to `deliver`; the answer, or why none came. */
async function createConsumer(nc: NatsConnection, api: string, name: string, deliver: string) {
  return nc
    .request(
      api,
      JSON.stringify({
        stream_name: centralSensors.stream,
        config: {
          name,
          durable_name: name,
          filter_subject: own,
          deliver_subject: deliver,
          ack_policy: 'none',
          deliver_policy: 'last_per_subject',
        },
      }),
      { timeout: 1500 },
    )
    .then((m) => m.string())
    .catch((e: Error) => `refused: ${e.message}`);
}

async function consumerNames(): Promise<string[]> {
  const jsm = await jetstreamManager(collector);
  const names: string[] = [];
  for await (const c of jsm.consumers.list(centralSensors.stream)) names.push(c.name);
  return names;
}

describe('central sensor reads of an edge', () => {
  it('cannot create any consumer of the bucket, so nothing is delivered into other subjects', async () => {
    const targets = [
      subjects.edgeStatus('gw-b'),
      subjects.obs('gw-b'),
      `${subjects.inbox('gw-a')}.own`,
      `$JS.API.STREAM.DELETE.${streams.OBS.name}`,
    ];
    const seen: string[] = [];
    const subs = targets.map((t) =>
      collector.subscribe(t, {
        callback: (_e, m) => {
          seen.push(`${m.subject}: ${m.string()}`);
        },
      }),
    );
    await collector.flush();
    const nc = await asEdgeA();
    try {
      const stream = centralSensors.stream;
      const answers: string[] = [];
      for (const [i, deliver] of targets.entries()) {
        for (const api of [
          `$JS.API.CONSUMER.CREATE.${stream}.c${i}.${own}`,
          `$JS.API.CONSUMER.CREATE.${stream}.c${i}`,
          `$JS.API.CONSUMER.CREATE.${stream}`,
          `$JS.API.CONSUMER.DURABLE.CREATE.${stream}.d${i}`,
        ])
          answers.push(await createConsumer(nc, api, api.endsWith(`d${i}`) ? `d${i}` : `c${i}`, deliver));
      }
      await collector.flush();
      expect(answers.every((a) => a.startsWith('refused:'))).toBe(true);
      expect(seen).toEqual([]);
      expect(await consumerNames()).toEqual([]);
      const jsm = await jetstreamManager(collector);
      expect((await jsm.streams.info(streams.OBS.name)).config.name).toBe(streams.OBS.name);
    } finally {
      for (const s of subs) s.unsubscribe();
      await nc.close();
    }
  });

  it("cannot read another edge's key through its own direct-get subject with a crafted body", async () => {
    const nc = await asEdgeA();
    try {
      const subject = `$JS.API.DIRECT.GET.${centralSensors.stream}.${own}`;
      // Its own key, as the agent asks for it: empty body.
      const mine = await nc.request(subject, '', { timeout: 1500 });
      expect(mine.string()).toContain('a/+station');
      for (const body of [
        { last_by_subj: otherKey },
        { seq: 2 },
        { next_by_subj: otherKey, seq: 1 },
        { multi_last: [otherKey], batch: 10 },
      ]) {
        const answer = await nc
          .request(subject, JSON.stringify(body), { timeout: 1500 })
          .then((m) => `${m.headers?.code ?? ''} ${m.string()}`)
          .catch((e: Error) => `refused: ${e.message}`);
        // nats-server answers a last-by-subject get that has a body with 408 Bad Request.
        expect(answer).not.toContain('secret-of-b');
        expect(answer).toMatch(/^408 /);
      }
    } finally {
      await nc.close();
    }
  });
});
