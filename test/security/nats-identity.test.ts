import { readFileSync } from 'node:fs';
import {
  addEdge,
  CloudErrorCode,
  collectorConnectOptions,
  collectorSeed,
  EdgeControlError,
  ensureStreams,
  requestEdge,
} from '@fieldbeam/cloud';
import {
  createEdgeAgent,
  createJetStreamPublisher,
  type EdgeAgent,
  parseEdgeConfig,
  SqliteOutbox,
  startForwarder,
  toObservation,
} from '@fieldbeam/edge';
import { controlServiceName, type ObservationBatch, streams, subjects } from '@fieldbeam/protocol';
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import { connect, type NatsConnection, nkeyAuthenticator } from '@nats-io/transport-node';
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
/** A victim and a hostile edge, each with its own real identity. */
let seedVictim: string;
let seedAttacker: string;
let seedPredictable: string;

beforeAll(async () => {
  dir = tempDir();
  const idDir = `${dir.path}/identity`;
  seedA = addEdge(idDir, 'gw-a').seed;
  seedVictim = addEdge(idDir, 'gw-v').seed;
  seedAttacker = addEdge(idDir, 'gw-x').seed;
  seedPredictable = addEdge(idDir, 'gw-p').seed;
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
      // Of its own namespace, only the status subject.
      nc.publish('fb.edge.gw-a.config', '{}');
      await nc.flush();
      await waitFor('permission violations', () => (errors.length >= 3 ? true : undefined), 5000);
      expect(errors.join('\n')).toMatch(/Permissions Violation for Publish to "fb\.obs\.gw-b"/i);
      expect(errors.join('\n')).toMatch(/Permissions Violation for Publish to "fb\.edge\.gw-a\.config"/i);
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

const collectorAuth = () => ({
  authenticator: nkeyAuthenticator(enc(collectorSeed(`${dir.path}/identity`))),
});

/** The hostile edge: its own key and its own inbox prefix, as its credentials require. */
async function connectAttacker(): Promise<{ nc: NatsConnection; errors: string[] }> {
  const nc = await connect({
    servers: nats.url,
    authenticator: nkeyAuthenticator(enc(seedAttacker)),
    inboxPrefix: subjects.inbox('gw-x'),
  });
  const errors: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') errors.push(String(s.error));
  })();
  return { nc, errors };
}

function startAgent(edge: string, seed: string): Promise<EdgeAgent> {
  return createEdgeAgent(
    parseEdgeConfig({
      edge,
      data_dir: `${dir.path}/${edge}`,
      nats: { servers: [nats.url], nkey_seed: seed },
      mqtt: { host: '127.0.0.1', port: 0 },
      http: { host: '127.0.0.1', port: 0 },
      sensors: [
        { topic: 's/+station/t', decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' } },
      ],
    }),
    log,
  );
}

/** Publishes `n` readings one by one at QoS 1, each acknowledged (committed to the buffer). */
async function sendReadings(agent: EdgeAgent, n: number, station: string): Promise<void> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${agent.mqttPort}`);
  try {
    for (let i = 0; i < n; i++) await c.publishAsync(`s/${station}/t`, String(i), { qos: 1 });
  } finally {
    await c.endAsync();
  }
}

async function storedOf(edge: string): Promise<number> {
  const { observations } = await readObsStream(nats.url, collectorAuth());
  return observations.filter((o) => o.edge === edge).length;
}

/** A valid batch from the attacker's own edge, so only its message id is hostile. */
function attackerBatch(): string {
  const obs = toObservation(
    { source: 'mqtt', edge: 'gw-x', station: 'decoy' },
    { variable: 'air_temperature', value: 1, unit: 'degC', timeMs: Date.now() },
    Date.now(),
  );
  const batch: ObservationBatch = {
    v: 1,
    edge: 'gw-x',
    seq: [1, 1],
    sent: new Date().toISOString(),
    observations: [obs],
  };
  return JSON.stringify(batch);
}

describe('inbox isolation', () => {
  it("refuses an edge's subscriptions outside its own inbox, and it receives nothing while the collector pulls", async () => {
    const victim = await startAgent('gw-v', seedVictim);
    const { nc: attacker, errors } = await connectAttacker();
    const snooped = new Map<string, number>();
    const snoop = [
      '_INBOX.>',
      `${subjects.inbox('collector')}.>`,
      `${subjects.inbox('gw-v')}.>`,
      'fb.obs.>',
      subjects.obs('gw-v'),
      '>',
      '$JS.>',
    ];
    // Its own inbox is allowed, and gets nothing of anyone else's.
    for (const subject of [...snoop, `${subjects.inbox('gw-x')}.>`]) {
      snooped.set(subject, 0);
      attacker.subscribe(subject, {
        callback: (err) => {
          if (!err) snooped.set(subject, (snooped.get(subject) ?? 0) + 1);
        },
      });
    }
    const collector = await connect(
      collectorConnectOptions({
        NATS_URL: nats.url,
        FB_IDENTITY_DIR: `${dir.path}/identity`,
        FB_DATA_DIR: dir.path,
      }),
    );
    try {
      await attacker.flush();
      await waitFor(
        'every snooping subscription refused',
        () =>
          snoop.every((subject) => errors.some((e) => e.includes(`Subscription to "${subject}"`)))
            ? true
            : undefined,
        10_000,
      );
      // Nor may it read a stream or a consumer through the JetStream API.
      for (const api of [
        `$JS.API.STREAM.MSG.GET.${streams.OBS.name}`,
        `$JS.API.DIRECT.GET.${streams.OBS.name}`,
        `$JS.API.CONSUMER.MSG.NEXT.${streams.OBS.name}.ingest`,
        `$JS.API.CONSUMER.CREATE.${streams.OBS.name}`,
      ]) {
        await expect(attacker.request(api, '{"seq":1}', { timeout: 1500 })).rejects.toThrow();
        await waitFor(
          `publish to ${api} refused`,
          () => (errors.some((e) => e.includes(`Publish to "${api}"`)) ? true : undefined),
          5000,
        );
      }

      await sendReadings(victim, 20, 'snooped');
      await waitFor(
        "the victim's readings in the stream",
        async () => ((await storedOf('gw-v')) >= 20 ? true : undefined),
        20_000,
      );
      // The collector pulls them: the deliveries go to its own inbox only.
      const jsm = await jetstreamManager(collector);
      await jsm.consumers.add(streams.OBS.name, {
        durable_name: 'snoop-check',
        ack_policy: AckPolicy.Explicit,
      });
      const consumer = await jetstream(collector).consumers.get(streams.OBS.name, 'snoop-check');
      let pulled = 0;
      const iter = await consumer.fetch({ max_messages: 1000, expires: 2000 });
      for await (const m of iter) {
        expect(m.subject.startsWith('fb.obs.')).toBe(true);
        pulled++;
        m.ack();
      }
      expect(pulled).toBeGreaterThan(0);
      await attacker.flush();
      expect(Object.fromEntries(snooped)).toEqual(Object.fromEntries([...snooped.keys()].map((k) => [k, 0])));
    } finally {
      await collector.close();
      await attacker.close();
      await victim.close();
    }
  });
});

describe('control isolation', () => {
  it("lets the collector call an edge's control service, and no other edge read, call or answer it", async () => {
    const victim = await startAgent('gw-v', seedVictim);
    const { nc: attacker, errors } = await connectAttacker();
    const collector = await connect(
      collectorConnectOptions({
        NATS_URL: nats.url,
        FB_IDENTITY_DIR: `${dir.path}/identity`,
        FB_DATA_DIR: dir.path,
      }),
    );
    const snooped = new Map<string, number>();
    const snoop = [
      subjects.controlAll('gw-v'),
      subjects.control('gw-v', 'status'),
      'fb.ctl.>',
      'fb.ctl.*.ping',
      `$SRV.PING.${controlServiceName('gw-v')}`,
      `$SRV.*.${controlServiceName('gw-v')}.*`,
      '$SRV.>',
      // Where the victim's replies go.
      `${subjects.inbox('collector')}.>`,
    ];
    try {
      await waitFor('the victim answering the collector', () =>
        requestEdge(collector, 'gw-v', 'ping').then(
          () => true,
          () => undefined,
        ),
      );
      // Its own control subjects are allowed, and carry nothing of the victim's.
      for (const subject of [...snoop, subjects.controlAll('gw-x')]) {
        snooped.set(subject, 0);
        attacker.subscribe(subject, {
          callback: (err) => {
            if (!err) snooped.set(subject, (snooped.get(subject) ?? 0) + 1);
          },
        });
      }
      await attacker.flush();
      await waitFor(
        "every subscription to the victim's control subjects refused",
        () =>
          snoop.every((subject) => errors.some((e) => e.includes(`Subscription to "${subject}"`)))
            ? true
            : undefined,
        10_000,
      );
      // The victim answers the collector while the attacker listens: nothing reaches the attacker.
      expect((await requestEdge(collector, 'gw-v', 'status', { id: 'c-1' })).id).toBe('c-1');
      expect((await requestEdge(collector, 'gw-v', 'rejects')).edge).toBe('gw-v');
      await attacker.flush();
      expect(Object.fromEntries(snooped)).toEqual(Object.fromEntries([...snooped.keys()].map((k) => [k, 0])));

      // It may not call the victim, nor slip a forged answer into the collector's inbox.
      attacker.publish(subjects.control('gw-v', 'reload'), '{}');
      attacker.publish(`${subjects.inbox('collector')}.forged`, '{"edge":"gw-v"}');
      await attacker.flush();
      await waitFor(
        'the call and the forged reply refused',
        () =>
          errors.some((e) => e.includes(`Publish to "${subjects.control('gw-v', 'reload')}"`)) &&
          errors.some((e) => e.includes(`Publish to "${subjects.inbox('collector')}.forged"`))
            ? true
            : undefined,
        5000,
      );

      // With the victim gone, nobody answers in its name: the collector hears "no responders".
      await victim.close();
      const err = await requestEdge(collector, 'gw-v', 'status').then(
        () => undefined,
        (e: unknown) => e as EdgeControlError,
      );
      expect(err).toBeInstanceOf(EdgeControlError);
      expect(err?.code).toBe(CloudErrorCode.EDGE_NOT_CONNECTED);
    } finally {
      await collector.close();
      await attacker.close();
      await victim.close();
    }
  });
});

describe('message-id squatting', () => {
  it("a hostile edge cannot have another edge's batches dropped as duplicates", async () => {
    const victim = await startAgent('gw-v', seedVictim);
    const { nc: attacker } = await connectAttacker();
    const before = await storedOf('gw-v');
    try {
      // The worst case: the attacker knows everything the victim ever shows (its buffer id is in its
      // log) and publishes, on its own subject, every id the victim could derive from it for its next
      // readings: the ranges of its next 20 sequence numbers.
      const js = jetstream(attacker, { timeout: 5000 });
      const next = victim.outbox.stats().appended;
      const squatted: string[] = [];
      for (let first = next + 1; first <= next + 20; first++) {
        for (let last = first; last <= next + 20; last++) {
          squatted.push(`gw-v:${victim.outbox.bufferId}:${first}-${last}`);
        }
      }
      for (const msgID of squatted) await js.publish(subjects.obs('gw-x'), attackerBatch(), { msgID });

      await sendReadings(victim, 20, 'squatted');
      await waitFor(
        'all 20 victim readings stored',
        async () => ((await storedOf('gw-v')) - before >= 20 ? true : undefined),
        20_000,
      );
      expect((await storedOf('gw-v')) - before).toBe(20);
    } finally {
      await attacker.close();
      await victim.close();
    }
  });

  it('a batch whose id was taken anyway is reported, counted and sent again under a new id: none lost', async () => {
    // Suppose the attacker did learn the ids (a leak): the edge's nonces are made predictable here.
    // With one reading per batch and one batch in flight, batch i (sequence i+1) first uses nonce
    // L<2i>, and L<2i+1> when it has to be renamed.
    let n = 0;
    const nonce = () => `L${n++}`;
    const predicted = Array.from({ length: 5 }, (_, i) => `gw-p:L${2 * i}:${i + 1}-${i + 1}`);
    const { nc: attacker } = await connectAttacker();
    const js = jetstream(attacker, { timeout: 5000 });
    for (const msgID of predicted) await js.publish(subjects.obs('gw-x'), attackerBatch(), { msgID });
    await attacker.close();

    const outbox = new SqliteOutbox({
      path: `${dir.path}/gw-p.buffer.sqlite`,
      capacityBytes: 64 * 1024 * 1024,
      policy: 'block',
      commitWindowMs: 2,
      synchronous: 'NORMAL',
      keepRejects: 10,
    });
    for (let i = 0; i < 5; i++) {
      await outbox.append([
        toObservation(
          { source: 'mqtt', edge: 'gw-p', station: 'leak' },
          { variable: 'air_temperature', value: i, unit: 'degC', timeMs: Date.now() - 1000 + i },
          Date.now(),
        ),
      ]);
    }
    const publisher = createJetStreamPublisher({
      servers: [nats.url],
      name: 'gw-p',
      nkeySeed: seedPredictable,
      inboxPrefix: subjects.inbox('gw-p'),
      ackTimeoutMs: 5000,
    });
    const reported: string[] = [];
    const fwd = startForwarder(
      outbox,
      publisher,
      {
        edge: 'gw-p',
        maxBatchObservations: 1,
        maxBatchBytes: 1e6,
        maxInFlight: 1,
        idleMs: 10,
        backoff: { initialMs: 10, maxMs: 100 },
        nonce,
      },
      { onUnexpectedDuplicate: (_b, msgId) => reported.push(msgId) },
    );
    try {
      await waitFor('the buffer drained', () => (outbox.stats().depth === 0 ? true : undefined), 20_000);
      expect(await storedOf('gw-p')).toBe(5);
      expect(fwd.unexpectedDuplicates).toBe(5);
      expect(reported).toEqual(predicted);
    } finally {
      await fwd.close();
      await publisher.close();
      await outbox.close();
    }
  });
});
