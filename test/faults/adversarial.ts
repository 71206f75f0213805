/**
 * Adversarial scenarios: one good edge under steady load from its MQTT sensor, and a second edge
 * turned hostile, using its own real NATS identity (registered as `fieldbeam-cloud edge add` does,
 * nats-server running the nkey authorization that command writes). Each asserts what the fault
 * scenarios assert for the good readings (every acknowledged one stored exactly once), plus: every
 * bad part is accounted for (collector dead letters or the edge's rejects, with a reason), and ingest
 * of the good readings never waits longer than {@link STALL_LIMIT_S} (the worst wait is reported).
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { batchLimits, batchMsgId, observationId, streams, subjects } from '@fieldbeam/protocol';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import mqtt from 'mqtt';
import { repoRoot } from '../harness/index.js';
import { Attacker, type AttackMessage } from './attacker.js';
import { type Mode, type Recorder, type Scenario, type ScenarioContext, withSystem } from './scenarios.js';
import { type FaultEdge, type FaultSystem, sleep } from './system.js';

/** The promise: a good reading waits at most this long between its acknowledgement and Postgres. */
export const STALL_LIMIT_S = 10;

const pick = <T>(mode: Mode, quick: T, full: T) => (mode === 'quick' ? quick : full);
const iso = (ms: number) => new Date(ms).toISOString();

interface AttackContext {
  sys: FaultSystem;
  rec: Recorder;
  attacker: Attacker;
  good: FaultEdge;
  mode: Mode;
  /** Rounds of the attack: 1 in the quick form, more in the full form. */
  rounds: number;
  /** Only readings received from here on count for the worst stall (default: the attack's start). */
  stallFrom(ms: number): void;
}

interface Attack {
  name: string;
  summary: string;
  uplink?: 'direct' | 'proxy';
  sensors?: Record<string, unknown>[];
  /** The good edge's `forward` settings, when the attack depends on them. */
  forward?: Record<string, unknown>;
  /** Runs while the good load flows; may return checks that run once everything settled. */
  run(a: AttackContext): Promise<undefined | ((a: AttackContext) => Promise<void>)>;
}

// ---- reading the edge's buffer file ---------------------------------------------------------------

interface BufferDb {
  prepare(sql: string): { get(...p: unknown[]): unknown; all(...p: unknown[]): unknown[] };
  close(): void;
}

/** The edge's SQLite buffer, opened read-only with the edge's own better-sqlite3. */
function openBuffer(e: FaultEdge): BufferDb {
  const require = createRequire(join(repoRoot(), 'edge/package.json'));
  const Database = require('better-sqlite3') as new (
    path: string,
    o: { readonly: boolean; fileMustExist: boolean },
  ) => BufferDb;
  return new Database(join(e.agent.dataDir, `${e.id}.buffer.sqlite`), {
    readonly: true,
    fileMustExist: true,
  });
}

function readBuffer<T>(e: FaultEdge, fn: (db: BufferDb) => T): T {
  const db = openBuffer(e);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

// ---- a good MQTT sensor besides the load publisher ----------------------------------------------

/** An MQTT QoS 1 client of the good edge that remembers which of its messages were acknowledged. */
async function goodSensor(e: FaultEdge) {
  const client = await mqtt.connectAsync(e.agent.mqttUrl, {
    clientId: `fb-faults-probe-${randomBytes(3).toString('hex')}`,
    reconnectPeriod: 200,
  });
  return {
    /** Publishes at QoS 1; true when the PUBACK arrived. */
    async publish(topic: string, payload: string | Buffer): Promise<boolean> {
      try {
        await client.publishAsync(topic, payload, { qos: 1 });
        return true;
      } catch {
        return false;
      }
    },
    close: () => client.endAsync(true).catch(() => {}),
  };
}

// ---- measurement ----------------------------------------------------------------------------------

/** Longest wait (s) from the edge's receipt to the Postgres commit of the good edge's readings since `from`. */
async function worstStall(sys: FaultSystem, station: string, from: number): Promise<number | undefined> {
  const r = await sys.pool.query<{ worst: number | null }>(
    `SELECT max(extract(epoch FROM ingested - received))::float8 AS worst
       FROM observations WHERE station = $1 AND received >= $2`,
    [station, new Date(from)],
  );
  return r.rows[0]?.worst ?? undefined;
}

async function partitions(sys: FaultSystem): Promise<number> {
  const r = await sys.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'observations'::regclass`,
  );
  return r.rows[0]?.n ?? 0;
}

/**
 * Every message the attacker got into the stream is accounted for: its valid observations are
 * stored exactly once, under its own edge; when it carried bad parts, dead letters hold it (by stream
 * sequence) with a reason. Refusals at publish time and duplicates JetStream dropped are counted too.
 */
async function accountAttacker(sys: FaultSystem, rec: Recorder, attacker: Attacker) {
  const stored = attacker.messages.filter((m) => m.seq !== undefined);
  const seqs = stored.map((m) => m.seq as number);
  const dead = new Map<number, string[]>();
  if (seqs.length > 0) {
    const r = await sys.pool.query<{ stream_seq: string; reason: string }>(
      'SELECT stream_seq, reason FROM dead_letters WHERE stream_seq = ANY($1::bigint[])',
      [seqs],
    );
    for (const row of r.rows) {
      const k = Number(row.stream_seq);
      dead.set(k, [...(dead.get(k) ?? []), row.reason]);
    }
  }
  const ids = stored.flatMap((m) => m.valid.map((o) => o.id));
  const rows = new Map<string, number>();
  if (ids.length > 0) {
    const r = await sys.pool.query<{ id: string; n: number }>(
      'SELECT id, count(*)::int AS n FROM observations WHERE id = ANY($1::text[]) AND edge = $2 GROUP BY id',
      [ids, attacker.edge],
    );
    for (const row of r.rows) rows.set(row.id, row.n);
  }
  let deadLetters = 0;
  let validStored = 0;
  let badParts = 0;
  const unaccounted: string[] = [];
  const validMissing: string[] = [];
  for (const m of stored) {
    const reasons = dead.get(m.seq as number) ?? [];
    deadLetters += reasons.length;
    badParts += m.bad;
    if (reasons.some((r) => r.trim() === '')) unaccounted.push(`${m.label} (dead letter without a reason)`);
    if (m.bad > 0 && reasons.length === 0) unaccounted.push(m.label);
    for (const o of m.valid) {
      const n = rows.get(o.id) ?? 0;
      if (n === 1) validStored++;
      else validMissing.push(`${m.label}: ${n} rows of a valid observation`);
    }
  }
  const refused = attacker.messages.filter((m) => m.error !== undefined);
  const dups = attacker.messages.filter((m) => m.duplicate).length;
  rec.notes.push(
    `attacker: ${attacker.messages.length} messages (${stored.length} stored by JetStream, ${refused.length} refused, ${dups} dropped as duplicates); ${badParts} bad parts in ${stored.filter((m) => m.bad > 0).length} messages -> ${deadLetters} dead letters; ${validStored} valid neighbours stored`,
  );
  if (refused.length > 0)
    rec.notes.push(
      `refused at publish: ${[...new Set(refused.map((m) => `${m.label}: ${m.error}`))].slice(0, 3).join(' | ')}`,
    );
  const reasons = [...new Set([...dead.values()].flat())].slice(0, 3).map((r) => r.slice(0, 120));
  if (reasons.length > 0) rec.notes.push(`dead-letter reasons e.g. ${reasons.join(' | ')}`);
  if (unaccounted.length > 0)
    rec.failures.push(
      `${unaccounted.length} attacker messages with bad parts are in no dead letter: ${[...new Set(unaccounted)].slice(0, 4).join(', ')}`,
    );
  if (validMissing.length > 0)
    rec.failures.push(
      `${validMissing.length} valid observations next to bad ones were not stored exactly once: ${validMissing.slice(0, 3).join('; ')}`,
    );
}

/** Edge rejects (its buffer's `rejects` table) on one topic, with their reasons. */
function edgeRejects(e: FaultEdge, topic: string): string[] {
  return readBuffer(e, (db) =>
    (db.prepare('SELECT reason FROM rejects WHERE topic = ?').all(topic) as { reason: string }[]).map(
      (r) => r.reason,
    ),
  );
}

// ---- the frame shared by every attack ------------------------------------------------------------

function adversarial(attack: Attack): Scenario {
  const name = `adversarial-${attack.name}`;
  return {
    name,
    summary: attack.summary,
    run: async (ctx: ScenarioContext) => {
      const warm = pick(ctx.mode, 2, 5);
      const rounds = pick(ctx.mode, 1, 10);
      const tail = pick(ctx.mode, 3, 15);
      const rate = pick(ctx.mode, 1000, 2000);
      const result = await withSystem(
        {
          scenario: name,
          collectors: 1,
          auth: 'nkey',
          identities: ['attacker'],
          edges: [
            {
              name: 'good',
              uplink: attack.uplink ?? 'direct',
              rate,
              seconds: warm + rounds * 4 + tail,
              ...(attack.sensors ? { sensors: attack.sensors } : {}),
              ...(attack.forward ? { forward: attack.forward } : {}),
            },
          ],
        },
        ctx,
        async (sys, rec) => {
          const good = sys.edges[0];
          const identity = sys.identities.get('attacker');
          if (!good || !identity) throw new Error('topology');
          const attacker = await Attacker.connect({
            url: sys.nats.url,
            edge: identity.id,
            seed: identity.seed,
          });
          let stallFrom = 0;
          const a: AttackContext = {
            sys,
            rec,
            attacker,
            good,
            mode: ctx.mode,
            rounds,
            stallFrom: (ms) => {
              stallFrom = ms;
            },
          };
          let checks: Awaited<ReturnType<Attack['run']>>;
          let partitionsBefore = 0;
          try {
            partitionsBefore = await partitions(sys);
            await sys.startLoads();
            await sleep(warm * 1000);
            stallFrom = Date.now();
            sys.log(`attack: ${attack.summary}`);
            checks = await attack.run(a);
            await attacker.flush();
            await sleep(tail * 1000);
          } catch (err) {
            await attacker.close();
            throw err;
          }
          return async () => {
            await attacker.close();
            await accountAttacker(sys, rec, attacker);
            if (checks) await checks(a);
            const made = (await partitions(sys)) - partitionsBefore;
            if (made > 0) rec.notes.push(`${made} partitions created`);
            const stall = await worstStall(sys, good.station, stallFrom);
            if (stall === undefined) rec.failures.push('no good reading was stored during the attack');
            else {
              rec.worstStall = stall;
              if (stall > STALL_LIMIT_S)
                rec.failures.push(
                  `a good reading waited ${stall.toFixed(1)} s for Postgres (limit ${STALL_LIMIT_S} s)`,
                );
            }
          };
        },
        // A stalled ingest shows as a stall and a settle timeout; waiting the default 5 minutes
        // would say nothing more.
        { settleTimeoutMs: pick(ctx.mode, 30_000, 120_000) },
      );
      if (result.lost > 0 && result.worstStall !== undefined)
        result.notes.push('the worst stall counts stored readings only: the lost ones never arrived');
      return result;
    },
  };
}

// ---- the attacks -----------------------------------------------------------------------------------

/** An observation of the attacker's own station: a valid neighbour that must be stored. */
const own = (at: Attacker, n: number) =>
  at.observation({ station: `${at.edge}-s`, time: iso(Date.now() - 1000 - n), value: n });

let counter = 0;
const next = () => ++counter;

const poisonText: Attack = {
  name: 'poison-text',
  summary:
    'NUL in text: a zigbee2mqtt sensor of the good edge sends "hot\\u0000x"; the attacker sends batches with NUL text next to valid observations',
  sensors: [{ topic: 'zigbee2mqtt/#name', decoder: { type: 'zigbee2mqtt', base_topic: 'zigbee2mqtt' } }],
  async run({ sys, attacker, good, rounds, rec }) {
    const device = `z-${sys.run}`;
    const poisonDevice = `${device}-poison`;
    const sensor = await goodSensor(good);
    const sent: { value: number; acked: boolean }[] = [];
    const poisons = [
      '{"temperature":"hot\\u0000x"}',
      Buffer.concat([Buffer.from('{"temperature":"hot'), Buffer.from([0]), Buffer.from('x"}')]),
    ];
    let poisonAcked = 0;
    try {
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < 20; i++) {
          const value = r * 100 + i + 0.5;
          sent.push({
            value,
            acked: await sensor.publish(`zigbee2mqtt/${device}`, `{"temperature":${value}}`),
          });
          if (i === 10)
            for (const p of poisons)
              if (await sensor.publish(`zigbee2mqtt/${poisonDevice}`, p)) poisonAcked++;
        }
        for (let b = 0; b < 5; b++) {
          const valid = [own(attacker, next()), own(attacker, next()), own(attacker, next())];
          const bad = [
            attacker.observation({
              station: `${attacker.edge}-s`,
              time: iso(Date.now()),
              text: 'hot\u0000x',
            }),
            attacker.observation({ station: `nul\u0000station`, time: iso(Date.now()), value: 1 }),
            attacker.observation({
              station: `${attacker.edge}-s`,
              sensor: 'a\u0000b',
              time: iso(Date.now()),
              value: 2,
            }),
          ];
          // Each bad observation right after a valid one.
          const obs = valid.flatMap((v, i) => [v, ...bad.slice(i, i + 1)]);
          await attacker.publish(`NUL batch ${r}.${b}`, attacker.batch(obs), { valid, bad: bad.length });
        }
        await sleep(3000);
      }
    } finally {
      await sensor.close();
    }
    return async () => {
      // The good zigbee2mqtt readings: each acknowledged one stored exactly once.
      const r = await sys.pool.query<{ value: number; n: number }>(
        'SELECT value, count(*)::int AS n FROM observations WHERE station = $1 GROUP BY value',
        [device],
      );
      const rows = new Map(r.rows.map((x) => [x.value, x.n]));
      const acked = sent.filter((x) => x.acked);
      const lost = acked.filter((x) => !rows.has(x.value)).length;
      const doubled = [...rows.values()].filter((n) => n > 1).length;
      rec.notes.push(`zigbee2mqtt sensor: ${acked.length}/${sent.length} acknowledged, ${rows.size} stored`);
      if (acked.length === 0) rec.failures.push('the zigbee2mqtt sensor got no PUBACK');
      if (lost > 0) rec.failures.push(`zigbee2mqtt sensor: ${lost} acknowledged readings not stored`);
      if (doubled > 0) rec.failures.push(`zigbee2mqtt sensor: ${doubled} readings stored twice`);
      // The poison itself: rejected by the edge, dead-lettered by the collector, or stored without the NUL.
      const rejects = edgeRejects(good, `zigbee2mqtt/${poisonDevice}`);
      const dl = await sys.pool.query<{ reason: string }>(
        `SELECT reason FROM dead_letters WHERE position(convert_to($1, 'UTF8') IN payload) > 0`,
        [poisonDevice],
      );
      const stored = await sys.pool.query<{ text: string | null }>(
        'SELECT text FROM observations WHERE station = $1',
        [poisonDevice],
      );
      const sentPoisons = poisons.length * rounds;
      rec.notes.push(
        `poison MQTT messages: ${sentPoisons} sent (${poisonAcked} acknowledged); ${rejects.length} edge rejects, ${dl.rows.length} dead letters, ${stored.rows.length} stored with the NUL removed${rejects[0] ? `; reason e.g. "${rejects[0].slice(0, 100)}"` : ''}`,
      );
      if (rejects.some((x) => x.trim() === ''))
        rec.failures.push('an edge reject of the poison has no reason');
      if (rejects.length + dl.rows.length + stored.rows.length < sentPoisons)
        rec.failures.push(
          `${sentPoisons - rejects.length - dl.rows.length - stored.rows.length} poison messages are in neither the edge's rejects nor dead letters`,
        );
    };
  },
};

const MONTH = 30.44 * 86_400_000;

const dates: Attack = {
  name: 'dates',
  summary:
    'impossible dates (2026-13-45T25:61:61.000Z, Feb 30) and far-off ones (1970, 9999, 100 months spread) next to valid observations',
  async run({ attacker, rounds, sys }) {
    const impossible = ['2026-13-45T25:61:61.000Z', '2026-02-30T12:00:00.000Z', '2025-11-31T24:00:00.000Z'];
    for (let r = 0; r < rounds; r++) {
      for (const t of impossible) {
        const [a, b] = [own(attacker, next()), own(attacker, next())];
        const bad = attacker.observation({ station: `${attacker.edge}-s`, time: t, value: next() });
        await attacker.publish(`impossible time ${t}`, attacker.batch([a, bad, b]), {
          valid: [a, b],
          bad: 1,
        });
      }
      // An impossible receipt time and an impossible send time (the whole batch is unusable then).
      const badReceived = { ...own(attacker, next()), received: impossible[0] as string };
      const v1 = own(attacker, next());
      await attacker.publish('impossible received', attacker.batch([v1, badReceived]), {
        valid: [v1],
        bad: 1,
      });
      const body = JSON.parse(attacker.batch([own(attacker, next())])) as Record<string, unknown>;
      await attacker.publish('impossible sent', JSON.stringify({ ...body, sent: impossible[0] }), { bad: 1 });
      for (const t of ['1970-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z', '0001-01-01T00:00:00.000Z']) {
        const valid = [own(attacker, next())];
        const bad = attacker.observation({ station: `${attacker.edge}-s`, time: t, value: next() });
        await attacker.publish(`far-off time ${t}`, attacker.batch([bad, ...valid]), { valid, bad: 1 });
      }
      // 100 months spread around now: most lie outside any sensible accepted range.
      const start = Date.now() - 50 * MONTH;
      const spread = Array.from({ length: 100 }, (_, i) =>
        attacker.observation({ station: `${attacker.edge}-s`, time: iso(start + i * MONTH), value: next() }),
      );
      const valid = [own(attacker, next())];
      await attacker.publish('100 months', attacker.batch([...spread, ...valid]), { valid, bad: 1 });
      await sleep(3000);
    }
    return async ({ rec }) => {
      const r = await sys.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM observations
          WHERE edge = $1 AND (time < '2000-01-01' OR time > '2100-01-01')`,
        [attacker.edge],
      );
      const n = r.rows[0]?.n ?? 0;
      if (n > 0) rec.failures.push(`${n} observations dated before 2000 or after 2100 were stored`);
      // Each month is a partition: the 100 asked for are bounded by the accepted range (the
      // collector's default, P366D back and PT10M ahead, touches at most 14 months).
      const m = await sys.pool.query<{ n: number }>(
        `SELECT count(DISTINCT date_trunc('month', time))::int AS n FROM observations WHERE edge = $1`,
        [attacker.edge],
      );
      const months = m.rows[0]?.n ?? 0;
      rec.notes.push(`the attacker's rows fall in ${months} months`);
      if (months > 14)
        rec.failures.push(`the attacker's rows fall in ${months} months (partitions), over 14`);
    };
  },
};

const malformed: Attack = {
  name: 'malformed',
  summary:
    'oversized and malformed batches: not JSON, not UTF-8, wrong schema, over the byte limit, wrong edge',
  async run({ attacker, sys, rounds }) {
    const goodId = sys.edges[0]?.id ?? 'good';
    for (let r = 0; r < rounds; r++) {
      await attacker.publish('not JSON', 'this is not JSON {{{', { bad: 1 });
      await attacker.publish('not UTF-8', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), { bad: 1 });
      await attacker.publish('JSON array', '[1,2,3]', { bad: 1 });
      await attacker.publish('version 2', attacker.batch([own(attacker, next())]).replace('"v":1', '"v":2'), {
        bad: 1,
      });
      await attacker.publish(
        'no observations',
        JSON.stringify({ ...JSON.parse(attacker.batch([own(attacker, next())])), observations: [] }),
        { bad: 1 },
      );
      await attacker.publish(
        'observations not an array',
        JSON.stringify({ ...JSON.parse(attacker.batch([own(attacker, next())])), observations: 'x' }),
        { bad: 1 },
      );
      const wrongValue = { ...own(attacker, next()), value: 'NaN' };
      const v = own(attacker, next());
      await attacker.publish('wrong value type', attacker.batch([v, wrongValue as never]), {
        valid: [v],
        bad: 1,
      });
      // Over the protocol's byte bound: 80 observations of 4 KiB text each (~330 KiB).
      const big = Array.from({ length: 80 }, (_, i) =>
        attacker.observation({
          station: `${attacker.edge}-s`,
          time: iso(Date.now() - i),
          text: 'x'.repeat(4000) + String(next()),
        }),
      );
      const bigBody = attacker.batch(big);
      if (bigBody.length <= batchLimits.maxBytes) throw new Error('the oversized batch is not oversized');
      await attacker.publish(`oversized (${Math.round(bigBody.length / 1024)} KiB)`, bigBody, { bad: 1 });
      const many = Array.from({ length: batchLimits.maxObservations + 1 }, () => own(attacker, next()));
      await attacker.publish('501 observations', attacker.batch(many), { bad: 1 });
      // Claiming to be the good edge, on the attacker's own subject.
      const spoofed = { ...own(attacker, next()), edge: goodId };
      await attacker.publish('batch claims the good edge', attacker.batch([spoofed], goodId), { bad: 1 });
      const mixed = own(attacker, next());
      await attacker.publish(
        'observation claims the good edge',
        attacker.batch([mixed, { ...own(attacker, next()), edge: goodId }]),
        { bad: 1 },
      );
      await sleep(3000);
    }
    return undefined;
  },
};

const preemption: Attack = {
  name: 'id-preemption',
  summary:
    "observation-id pre-emption: the attacker stores rows carrying the ids of the good edge's future readings (forged content and exact copies)",
  async run({ sys, attacker, good, rounds, rec }) {
    const station = `${good.id}-p`;
    const topic = `load/${station}/v`;
    const sensor = await goodSensor(good);
    // One reading first, to learn how the good edge describes this sensor (as any observer could).
    const t0 = Date.now() - 120_000;
    await sensor.publish(topic, JSON.stringify({ t: t0, v: -1 }));
    let model: { source: string; sensor: string | null; variable: string; unit: string } | undefined;
    for (let i = 0; i < 100 && !model; i++) {
      const r = await sys.pool.query(
        'SELECT source, sensor, variable, unit FROM observations WHERE station = $1',
        [station],
      );
      model = r.rows[0];
      if (!model) await sleep(100);
    }
    if (!model) throw new Error('the first probe reading never reached Postgres');
    const m = model;
    const future = Array.from({ length: 50 * rounds }, (_, k) => ({ k, time: iso(t0 + 1000 + k * 10) }));
    const genuineId = (f: { k: number; time: string }) =>
      observationId({
        source: m.source,
        station,
        sensor: m.sensor ?? undefined,
        variable: m.variable,
        time: f.time,
        value: f.k,
      });
    // Exact copies (a valid id for their content) and forgeries (the genuine id on other content).
    const copyObs = (f: { k: number; time: string }) => ({
      ...attacker.observation({
        source: m.source,
        station,
        ...(m.sensor ? { sensor: m.sensor } : {}),
        variable: m.variable,
        time: f.time,
        value: f.k,
      }),
      unit: m.unit,
    });
    for (let i = 0; i < future.length; i += 50) {
      const slice = future.slice(i, i + 50);
      const forged = slice.map((f) => ({ ...copyObs(f), id: genuineId(f), value: 666_000 + f.k }));
      await attacker.publish(`forged ids ${i}`, attacker.batch(forged), { bad: forged.length });
      await attacker.publish(`copied ids ${i}`, attacker.batch(slice.map(copyObs)));
    }
    await attacker.flush();
    await sleep(2000);
    const acked: boolean[] = [];
    try {
      for (const f of future)
        acked.push(await sensor.publish(topic, JSON.stringify({ t: Date.parse(f.time), v: f.k })));
    } finally {
      await sensor.close();
    }
    return async () => {
      const r = await sys.pool.query<{ value: number; edge: string; n: number }>(
        'SELECT value, edge, count(*)::int AS n FROM observations WHERE station = $1 AND value >= 0 GROUP BY value, edge',
        [station],
      );
      const ours = new Map<number, number>();
      let attackerRows = 0;
      for (const row of r.rows) {
        if (row.edge === good.id) ours.set(row.value, row.n);
        else attackerRows += row.n;
      }
      let lost = 0;
      let doubled = 0;
      let wrong = 0;
      for (const f of future) {
        const n = ours.get(f.k) ?? 0;
        if (acked[f.k] && n === 0) lost++;
        if (n > 1) doubled++;
      }
      for (const v of ours.keys()) if (v >= 666_000) wrong++;
      rec.notes.push(
        `pre-empted readings: ${acked.filter(Boolean).length} acknowledged, ${ours.size} stored as the good edge's; ${attackerRows} rows of this station under the attacker`,
      );
      if (lost > 0)
        rec.failures.push(`${lost} acknowledged readings were pre-empted (not stored under the good edge)`);
      if (doubled > 0) rec.failures.push(`${doubled} pre-empted readings stored twice under the good edge`);
      if (wrong > 0) rec.failures.push(`${wrong} forged values stored under the good edge`);
    };
  },
};

/** The good edge's batch size in the squatting attack, whose ranges the attacker guesses. */
const SQUAT_BATCH = 500;

const msgIdSquatting: Attack = {
  name: 'msg-id-squatting',
  summary:
    "Nats-Msg-Id squatting: while the good edge's uplink is cut, the attacker publishes the msg ids of its next batches (guessed buffer ids, then the real one read from its SQLite file)",
  uplink: 'proxy',
  // Batches of 500 whatever the encoding: the ranges the attacker squats below.
  forward: { max_batch_observations: SQUAT_BATCH, v2_batch_observations: SQUAT_BATCH },
  async run({ sys, attacker, good, rec, stallFrom, mode }) {
    let squats = 0;
    /** Sequence ranges squatted under the real buffer id. */
    const squatted = new Set<string>();
    // One cut: readings buffered during a deliberate cut wait for it, which is no ingest stall; the
    // stall is measured from the moment the uplink is back.
    for (let r = 0; r < 1; r++) {
      await sys.cutUplink(good, 'refuse');
      await sleep(pick(mode, 2500, 10_000));
      const { bufferId, first } = readBuffer(good, (db) => ({
        bufferId: (db.prepare("SELECT value FROM meta WHERE key = 'buffer_id'").get() as { value: string })
          .value,
        first: (db.prepare('SELECT min(seq) AS s FROM outbox').get() as { s: number | null }).s ?? 1,
      }));
      // After the cut the forwarder resends what was in flight and then takes full batches of up
      // to 500 readings from the backlog: predictable ranges, hence predictable ids were they made
      // of edge, buffer id and range alone.
      const ids: string[] = [];
      for (const guess of [randomBytes(6).toString('hex'), '000000000000', bufferId]) {
        // Every start in the first 2,000 after the oldest buffered reading: wherever the resent
        // batches end, the full batches after them are covered.
        const span = guess === bufferId ? SQUAT_BATCH : 20;
        for (let b = 0; b < 4; b++)
          for (let d = 0; d < span; d++) {
            const f = first + b * SQUAT_BATCH + d;
            const last = f + SQUAT_BATCH - 1;
            ids.push(batchMsgId(good.id, guess, f, last));
            if (guess === bufferId) squatted.add(`${f}-${last}`);
          }
      }
      const sends: Promise<AttackMessage>[] = [];
      for (const id of ids) {
        const o = own(attacker, next());
        sends.push(attacker.publish(`squat ${id}`, attacker.batch([o]), { valid: [o], msgId: id }));
        if (sends.length >= 200) await Promise.all(sends.splice(0));
      }
      await Promise.all(sends);
      squats += ids.length;
      sys.log(`squatted ${ids.length} msg ids from seq ${first} (buffer ${bufferId}); restoring the uplink`);
      await sys.restoreUplink(good);
      if (r === 0) stallFrom(Date.now());
      rec.recoveries.push(sys.recovery(Date.now(), 60_000));
      await sleep(1500);
    }
    return async () => {
      const m = await good.agent.metrics();
      const dups = [...(m?.entries() ?? [])]
        .filter(([k]) => /unexpected_duplicate/.test(k))
        .map(([k, v]) => `${k} ${v}`);
      rec.notes.push(
        `${squats} squatting messages; good edge: ${dups.length > 0 ? dups.join(', ') : 'no unexpected-duplicate metric'}`,
      );
      // The attack must have been on target: the good edge's batches after the cut have the ranges
      // squatted, so ids made of edge, buffer id and range (guessable) would have lost them.
      const ranges = await goodBatchRanges(sys, good);
      const hit = ranges.filter((r) => squatted.has(r)).length;
      rec.notes.push(`${hit} of the good edge's ${ranges.length} batches had a squatted range`);
      if (hit === 0) rec.failures.push('the squat missed every batch of the good edge: it shows nothing');
    };
  },
};

/** The `first-last` ranges in the msg ids of the good edge's batches in the stream (read as the collector). */
async function goodBatchRanges(sys: FaultSystem, good: FaultEdge): Promise<string[]> {
  const js = jetstream(await sys.client());
  const subject = subjects.obs(good.id);
  const info = await (await js.jetstreamManager()).streams.info(streams.OBS.name, {
    subjects_filter: subject,
  });
  if (!info.state.subjects?.[subject]) return [];
  const consumer = await js.consumers.get(streams.OBS.name, {
    filter_subjects: subject,
    deliver_policy: DeliverPolicy.All,
  });
  const out: string[] = [];
  const iter = await consumer.consume({ max_messages: 256 });
  for await (const m of iter) {
    const range = /:(\d+-\d+)$/.exec(m.headers?.get('Nats-Msg-Id') ?? '')?.[1];
    if (range) out.push(range);
    if (m.info.pending === 0) break;
  }
  return out;
}

const inboxSnooping: Attack = {
  name: 'inbox-snooping',
  summary:
    "inbox snooping: the attacker subscribes to _INBOX.>, other identities' inboxes and fb.obs.> while the collector pulls",
  async run({ sys, attacker, good, rounds }) {
    attacker.snoop([
      '_INBOX.>',
      `_INBOX.${good.id}.>`,
      '_INBOX.*.>',
      '_INBOX.collector.>',
      'fb.obs.>',
      `fb.obs.${good.id}`,
      '$JS.>',
      '>',
    ]);
    await sleep(rounds * 4000);
    return async ({ rec }) => {
      const got = [...attacker.snooped.entries()].filter(([, n]) => n > 0);
      rec.notes.push(
        `snooping: ${attacker.snoopedTotal} messages received on ${attacker.snooped.size} filters; ${attacker.refused.length} refusals by the server`,
      );
      if (got.length > 0)
        rec.failures.push(
          `the attacker received other identities' traffic: ${got.map(([f, n]) => `${f} ${n}`).join(', ')}`,
        );
      void sys;
    };
  },
};

export const adversarialScenarios: Scenario[] = [
  poisonText,
  dates,
  malformed,
  preemption,
  msgIdSquatting,
  inboxSnooping,
].map(adversarial);
