import { edgeCompleteness } from '@fieldbeam/cloud';
import { FaultSystem, type SystemSpec, sleep, type Tally, tally } from './system.js';

export type Mode = 'quick' | 'full';

/** One row of the table. */
export interface ScenarioResult {
  scenario: string;
  acked: number;
  stored: number;
  lost: number;
  duplicated: number;
  /** Recovery of each fault, in seconds from the moment it was cleared; null: did not recover in time. */
  recoveries: (number | null)[];
  /** Highest total edge buffer depth seen (readings). */
  peakBuffer: number;
  /** Losses the design allows here: what a drop_oldest agent counted as dropped. */
  expectedLost: number;
  /**
   * The collector's completeness account over the system's edges: readings sent and never received
   * that no edge explained (must be 0), and the gaps explained as drop_oldest drops (must equal
   * `expectedLost`). Absent where not measured (the soak).
   */
  unexplainedGaps?: number;
  explainedDrops?: number;
  ok: boolean;
  notes: string[];
  /** Why it is not ok (beyond lost/duplicated). */
  failures: string[];
  seconds: number;
  tallies: Tally[];
  /** Longest a good reading waited between its acknowledgement and Postgres (s), where measured. */
  worstStall?: number;
}

export interface ScenarioContext {
  mode: Mode;
  /** Seeded random numbers in [0, 1). */
  random: () => number;
  /** Publisher payloads: `json` with sensor time (default) or bare `number`s (agent receipt time). */
  payload?: 'json' | 'number';
  log?: (line: string) => void;
}

export interface Scenario {
  name: string;
  summary: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

/** What a scenario's body records besides the tally. */
export interface Recorder {
  recoveries: Promise<number | null>[];
  notes: string[];
  failures: string[];
  worstStall?: number;
}

/** What a scenario checks once everything was delivered (after the load stopped and the system settled). */
export type Afterwards = (sys: FaultSystem, rec: Recorder) => Promise<void>;

/** A small seeded generator (mulberry32), so a failing run can be repeated with its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const between = (random: () => number, lo: number, hi: number) => lo + random() * (hi - lo);

/**
 * Starts the system, runs `body` (load and faults), then stops the load, waits for everything to be
 * delivered, and compares the acknowledged readings with Postgres. Always tears the system down.
 */
export async function withSystem(
  spec: SystemSpec,
  ctx: ScenarioContext,
  // biome-ignore lint/suspicious/noConfusingVoidType: most bodies return nothing; some return checks
  body: (sys: FaultSystem, rec: Recorder) => Promise<void | Afterwards>,
  opts: { settleTimeoutMs?: number } = {},
): Promise<ScenarioResult> {
  const started = Date.now();
  const rec: Recorder = { recoveries: [], notes: [], failures: [] };
  const sys = await FaultSystem.start({ ...spec, payload: spec.payload ?? ctx.payload, log: ctx.log });
  try {
    let afterwards: Afterwards | undefined;
    try {
      afterwards = (await body(sys, rec)) ?? undefined;
    } catch (err) {
      rec.failures.push(`scenario failed: ${(err as Error).message}`);
      sys.log(`scenario failed: ${(err as Error).stack}`);
    }
    const recoveries = await Promise.all(rec.recoveries);
    sys.log('stopping the load');
    const results = await sys.stopLoads();
    const settle = await sys.settle(opts.settleTimeoutMs);
    if (settle) rec.failures.push(settle);
    if (afterwards) {
      try {
        await afterwards(sys, rec);
      } catch (err) {
        rec.failures.push(`checks failed: ${(err as Error).message}`);
        sys.log(`checks failed: ${(err as Error).stack}`);
      }
    }
    rec.failures.push(...sys.crashes);
    let expectedLost = 0;
    const droppedBy = new Map<string, number>();
    for (const e of sys.edges) {
      if (e.spec.buffer?.policy !== 'drop_oldest') continue;
      const m = await e.agent.metrics();
      const dropped = m?.get('fb_edge_buffer_dropped_total');
      if (dropped === undefined) rec.failures.push(`could not read the drop counter of ${e.id}`);
      else {
        expectedLost += dropped;
        droppedBy.set(e.id, dropped);
        rec.notes.push(`${e.id} dropped ${dropped} (fb_edge_buffer_dropped_total)`);
      }
    }
    // Completeness as the collector proves it: every sequence number each edge's buffers handed out
    // arrived, or the edge explained it as a drop, exactly as many as its counter says.
    let unexplainedGaps = 0;
    let explainedDrops = 0;
    for (const e of sys.edges) {
      const c = await edgeCompleteness(sys.pool, e.id);
      unexplainedGaps += c.unexplained;
      explainedDrops += c.explained.droppedOldest;
      if (c.unexplained > 0) {
        const ranges = c.buffers.flatMap((b) =>
          b.unexplainedRanges.map(([f, l]) => `${b.bufferId}:${f}-${l}`),
        );
        rec.failures.push(
          `${e.id}: ${c.unexplained} readings sent and never received, unexplained (${ranges.slice(0, 4).join(', ')})`,
        );
      }
      const dropped = droppedBy.get(e.id) ?? 0;
      if (c.explained.droppedOldest !== dropped)
        rec.failures.push(
          `${e.id}: the collector sees ${c.explained.droppedOldest} readings explained as dropped, the edge counted ${dropped}`,
        );
    }
    rec.notes.push(
      `completeness: ${unexplainedGaps} unexplained, ${explainedDrops} explained as drop_oldest`,
    );
    const rows = await sys.check(results);
    const tallies: Tally[] = [];
    for (const [station, r] of rows) {
      tallies.push(tally(station, r.result, r.rows, 0, r.result.sent, r.unknownRows));
      if (r.result.errors > 0)
        rec.notes.push(`${station}: ${r.result.errors} publishes failed (not acknowledged)`);
    }
    const sum = (k: keyof Tally) => tallies.reduce((s, t) => s + (t[k] as number), 0);
    const result: ScenarioResult = {
      scenario: spec.scenario,
      acked: sum('acked'),
      stored: sum('stored'),
      lost: sum('lost'),
      duplicated: sum('duplicated'),
      recoveries,
      peakBuffer: sys.peak,
      expectedLost,
      unexplainedGaps,
      explainedDrops,
      ok: false,
      notes: rec.notes,
      failures: rec.failures,
      seconds: (Date.now() - started) / 1000,
      tallies,
      ...(rec.worstStall !== undefined ? { worstStall: rec.worstStall } : {}),
    };
    const unacked = sum('storedUnacked');
    if (unacked > 0) rec.notes.push(`${unacked} stored without a PUBACK (at-least-once, allowed)`);
    if (sum('unknownRows') > 0) rec.failures.push(`${sum('unknownRows')} rows no publisher sent`);
    for (const t of tallies) {
      if (t.lost > 0 && t.lost !== expectedLost)
        rec.failures.push(`${t.station} lost e.g. seq ${t.lostExamples.join(', ')}`);
      if (t.duplicated > 0)
        rec.failures.push(`${t.station} duplicated e.g. seq ${t.duplicatedExamples.join(', ')}`);
    }
    if (result.lost !== expectedLost)
      rec.failures.push(`lost ${result.lost} acknowledged readings, the agent accounts for ${expectedLost}`);
    if (recoveries.some((r) => r === null)) rec.failures.push('did not recover within the time limit');
    if (result.acked === 0) rec.failures.push('nothing was acknowledged');
    result.ok = rec.failures.length === 0 && result.duplicated === 0 && result.lost === expectedLost;
    sys.log(
      `${result.ok ? 'ok' : 'FAILED'}: acked ${result.acked}, stored ${result.stored}, lost ${result.lost}, duplicated ${result.duplicated}`,
    );
    return result;
  } finally {
    await sys.close();
  }
}

const pick = <T>(mode: Mode, quick: T, full: T) => (mode === 'quick' ? quick : full);
const s = (ms: number) => sleep(ms * 1000);
const MiB = 1024 * 1024;

/** Waits until the publisher's acknowledged count stops moving for `quietMs`; resolves with it. */
async function waitForStall(
  sys: FaultSystem,
  quietMs: number,
  timeoutMs: number,
): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  let last = sys.acked;
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(100);
    const now = sys.acked;
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return now;
  }
  return undefined;
}

function uplinkOutage(name: string, how: 'refuse' | 'blackhole'): Scenario {
  return {
    name,
    summary:
      how === 'refuse'
        ? 'uplink connections refused (TCP proxy) for a while, under 2,000 readings/s, then restored'
        : 'uplink blackholed (nftables drop in a network namespace; connections hang) for a while, then restored',
    run: (ctx) => {
      const warm = pick(ctx.mode, 3, 10);
      const cut = pick(ctx.mode, how === 'refuse' ? 10 : 20, how === 'refuse' ? 120 : 180);
      const after = pick(ctx.mode, 5, 20);
      return withSystem(
        {
          scenario: name,
          collectors: 1,
          edges: [
            {
              name: 'a',
              uplink: how === 'refuse' ? 'proxy' : 'netns',
              rate: 2000,
              seconds: warm + cut + after,
            },
          ],
        },
        ctx,
        async (sys, rec) => {
          const e = sys.edges[0];
          if (!e) throw new Error('no edge');
          await sys.startLoads();
          await s(warm);
          sys.log(`uplink ${how} for ${cut} s`);
          await sys.cutUplink(e, how);
          const before = sys.acked;
          await s(cut);
          const during = sys.acked - before;
          rec.notes.push(`${cut} s ${how}; ${during} acknowledged meanwhile`);
          if (during < e.spec.rate * cut * 0.8)
            rec.failures.push(`sensors were not acknowledged during the cut (${during} in ${cut} s)`);
          await sys.restoreUplink(e);
          sys.log('uplink restored');
          rec.recoveries.push(sys.recovery(Date.now()));
          await s(after);
        },
      );
    },
  };
}

/**
 * `payload: 'number'`: readings without sensor time, stamped with the agent's receipt time. A reading
 * committed just before the kill whose PUBACK never left is sent again by the sensor (QoS 1) and,
 * stamped anew, gets a new id: the variant shows whether the agent recognises such a resend.
 */
const edgeKill = (name: string, payload?: 'number'): Scenario => ({
  name,
  summary:
    payload === 'number'
      ? 'kill -9 of the edge agent, readings without sensor time (receipt time; resent QoS 1 messages)'
      : 'kill -9 of the edge agent at random moments under load, restarted each time',
  run: (ctx) => {
    const kills = pick(ctx.mode, 3, 10);
    return withSystem(
      {
        scenario: name,
        collectors: 1,
        payload,
        edges: [{ name: 'a', uplink: 'direct', rate: 2000, seconds: kills * 6 + 10, maxInFlight: 500 }],
      },
      ctx,
      async (sys, rec) => {
        const e = sys.edges[0];
        if (!e) throw new Error('no edge');
        await sys.startLoads();
        for (let k = 0; k < kills; k++) {
          await s(between(ctx.random, 1, 4));
          await e.agent.kill();
          const down = between(ctx.random, 0.2, 2);
          sys.log(`edge killed (-9), down ${down.toFixed(1)} s`);
          await s(down);
          const at = Date.now();
          await e.agent.start();
          rec.recoveries.push(sys.recovery(at));
        }
        rec.notes.push(`${kills} kills`);
        await s(5);
      },
    );
  },
});

const collectorKill: Scenario = {
  name: 'collector-kill9',
  summary: 'kill -9 of the collector mid-ingest, restarted each time',
  run: (ctx) => {
    const kills = pick(ctx.mode, 2, 5);
    return withSystem(
      {
        scenario: 'collector-kill9',
        collectors: 1,
        edges: [{ name: 'a', uplink: 'direct', rate: 2000, seconds: kills * 10 + 10 }],
      },
      ctx,
      async (sys, rec) => {
        const c = sys.collectors[0];
        if (!c) throw new Error('no collector');
        await sys.startLoads();
        const inHand: string[] = [];
        for (let k = 0; k < kills; k++) {
          await s(between(ctx.random, 2, 6));
          const m = await c.metrics();
          // Mid-ingest: the batches it holds (delivered, not yet acknowledged) at the moment of the kill.
          const state = await sys.consumerState();
          await c.kill();
          inHand.push(String(state.ackPending ?? '?'));
          const down = between(ctx.random, 1, 5);
          sys.log(
            `collector killed (-9) after ${m?.get('fb_cloud_ingest_observations_total') ?? '?'} ingested, down ${down.toFixed(1)} s`,
          );
          await s(down);
          const at = Date.now();
          await c.start();
          rec.recoveries.push(sys.recovery(at));
        }
        rec.notes.push(`${kills} kills, holding ${inHand.join(' / ')} unacknowledged batches`);
        await s(5);
      },
    );
  },
};

const natsKill: Scenario = {
  name: 'nats-kill9',
  summary: 'kill -9 of nats-server, restarted with its JetStream store',
  run: (ctx) => {
    const kills = pick(ctx.mode, 2, 3);
    const down = pick(ctx.mode, 3, 15);
    return withSystem(
      {
        scenario: 'nats-kill9',
        collectors: 1,
        edges: [{ name: 'a', uplink: 'direct', rate: 2000, seconds: kills * (down + 8) + 10 }],
      },
      ctx,
      async (sys, rec) => {
        await sys.startLoads();
        for (let k = 0; k < kills; k++) {
          await s(between(ctx.random, 2, 5));
          await sys.nats.kill();
          sys.log(`nats-server killed (-9), down ${down} s`);
          await s(down);
          const at = Date.now();
          await sys.nats.restart();
          sys.log('nats-server restarted with its store');
          rec.recoveries.push(sys.recovery(at));
        }
        rec.notes.push(`${kills} kills, ${down} s down each`);
        await s(5);
      },
    );
  },
};

const postgresRestart: Scenario = {
  name: 'postgres-restart',
  summary: 'Postgres stopped and started again under load',
  run: (ctx) => {
    const times = pick(ctx.mode, 1, 2);
    const down = pick(ctx.mode, 5, 30);
    return withSystem(
      {
        scenario: 'postgres-restart',
        collectors: 1,
        edges: [{ name: 'a', uplink: 'direct', rate: 2000, seconds: times * (down + 10) + 10 }],
      },
      ctx,
      async (sys, rec) => {
        await sys.startLoads();
        for (let k = 0; k < times; k++) {
          await s(between(ctx.random, 2, 5));
          await sys.postgres.stop();
          sys.log(`postgres stopped for ${down} s`);
          await s(down);
          const at = Date.now();
          await sys.postgres.start();
          sys.log('postgres started');
          rec.recoveries.push(sys.recovery(at));
        }
        rec.notes.push(`${times} x ${down} s down`);
        await s(5);
      },
    );
  },
};

const bufferBlock: Scenario = {
  name: 'buffer-full-block',
  summary: 'long cut fills a 2 MiB buffer with policy block: acks stop (back-pressure), nothing lost',
  run: (ctx) => {
    const hold = pick(ctx.mode, 5, 60);
    const capacity = 2 * MiB;
    return withSystem(
      {
        scenario: 'buffer-full-block',
        collectors: 1,
        edges: [
          {
            name: 'a',
            uplink: 'proxy',
            rate: 2000,
            seconds: hold + 30,
            buffer: { capacity_bytes: capacity, policy: 'block' },
            maxInFlight: 200,
          },
        ],
      },
      ctx,
      async (sys, rec) => {
        const e = sys.edges[0];
        if (!e) throw new Error('no edge');
        await sys.startLoads();
        const load = e.load;
        if (!load) throw new Error('no load');
        await s(2);
        await sys.cutUplink(e, 'refuse');
        const cutAt = Date.now();
        sys.log('uplink refused until the buffer is full');
        const stalledAt = await waitForStall(sys, 1500, 120_000);
        if (stalledAt === undefined) throw new Error('acknowledgements never stopped: no back-pressure');
        const filledIn = (Date.now() - cutAt) / 1000 - 1.5;
        const status = await e.agent.status();
        sys.log(
          `buffer full after ${filledIn.toFixed(1)} s: acks stopped at ${stalledAt}; holding ${hold} s`,
        );
        await s(hold);
        const after = sys.acked;
        if (after !== stalledAt)
          rec.failures.push(`acks moved while the buffer was full (${stalledAt} -> ${after})`);
        if (status && status.buffer.bytes > capacity)
          rec.failures.push(`buffer ${status.buffer.bytes} bytes over its capacity ${capacity}`);
        if ((status?.buffer.dropped ?? 0) > 0) rec.failures.push(`block dropped ${status?.buffer.dropped}`);
        rec.notes.push(
          `acks held at ${stalledAt} for ${hold + 1.5} s with ${status?.buffer.depth} readings / ${status?.buffer.bytes} B buffered`,
        );
        await sys.restoreUplink(e);
        const at = Date.now();
        sys.log('uplink restored');
        rec.recoveries.push(sys.recovery(at));
        // The publisher's held messages are acknowledged now.
        const deadline = Date.now() + 60_000;
        while (
          Date.now() < deadline &&
          load.progress.inFlight > 0 &&
          load.progress.sent > load.progress.acked
        )
          await sleep(200);
        await s(3);
      },
    );
  },
};

const bufferDrop: Scenario = {
  name: 'buffer-full-drop-oldest',
  summary: 'long cut overflows a 2 MiB buffer with policy drop_oldest: lost equals the drop counter exactly',
  run: (ctx) => {
    const cut = pick(ctx.mode, 8, 60);
    return withSystem(
      {
        scenario: 'buffer-full-drop-oldest',
        collectors: 1,
        edges: [
          {
            name: 'a',
            uplink: 'proxy',
            rate: 2000,
            seconds: cut + 15,
            buffer: { capacity_bytes: 2 * MiB, policy: 'drop_oldest' },
          },
        ],
      },
      ctx,
      async (sys, rec) => {
        const e = sys.edges[0];
        if (!e) throw new Error('no edge');
        await sys.startLoads();
        await s(2);
        await sys.cutUplink(e, 'refuse');
        const before = sys.acked;
        sys.log(`uplink refused for ${cut} s`);
        await s(cut);
        const during = sys.acked - before;
        if (during < e.spec.rate * cut * 0.8)
          rec.failures.push(`drop_oldest stopped acknowledging (${during} in ${cut} s)`);
        await sys.restoreUplink(e);
        const at = Date.now();
        rec.recoveries.push(sys.recovery(at));
        await s(5);
      },
    );
  },
};

const twoByTwo: Scenario = {
  name: 'two-edges-two-collectors',
  summary:
    'two edges, two collectors sharing the ingest consumer; a collector stopped (full: kill -9) and an edge killed -9',
  run: (ctx) => {
    const rounds = pick(ctx.mode, 1, 3);
    return withSystem(
      {
        scenario: 'two-edges-two-collectors',
        collectors: 2,
        edges: [
          { name: 'a', uplink: 'direct', rate: 1000, seconds: rounds * 14 + 10 },
          { name: 'b', uplink: 'direct', rate: 1000, seconds: rounds * 14 + 10 },
        ],
      },
      ctx,
      async (sys, rec) => {
        await sys.startLoads();
        for (let r = 0; r < rounds; r++) {
          await s(between(ctx.random, 2, 4));
          const c = sys.collectors[r % 2];
          const e = sys.edges[(r + 1) % 2];
          if (!c || !e) throw new Error('topology');
          // Quick form: SIGTERM, so its fetched batches are handed back at once; full form: kill -9,
          // so they wait out the consumer's ack_wait (the collector-kill9 scenario does that quickly too).
          if (ctx.mode === 'quick') await c.stop();
          else await c.kill();
          sys.log(
            `collector ${c.name} ${ctx.mode === 'quick' ? 'stopped (SIGTERM)' : 'killed (-9)'}; the other one keeps ingesting`,
          );
          await s(between(ctx.random, 1, 3));
          let at = Date.now();
          await c.start();
          rec.recoveries.push(sys.recovery(at));
          await s(between(ctx.random, 1, 3));
          await e.agent.kill();
          sys.log(`edge ${e.id} killed (-9)`);
          await s(between(ctx.random, 0.2, 1.5));
          at = Date.now();
          await e.agent.start();
          rec.recoveries.push(sys.recovery(at));
        }
        await s(5);
        const per = await Promise.all(sys.collectors.map((c) => c.metrics()));
        rec.notes.push(
          `ingested per collector since its last start: ${per.map((m) => m?.get('fb_cloud_ingest_observations_total') ?? '?').join(' / ')}`,
        );
      },
    );
  },
};

export const scenarios: Scenario[] = [
  uplinkOutage('uplink-cut', 'refuse'),
  uplinkOutage('uplink-blackhole', 'blackhole'),
  edgeKill('edge-kill9'),
  edgeKill('edge-kill9-receipt-time', 'number'),
  collectorKill,
  natsKill,
  postgresRestart,
  bufferBlock,
  bufferDrop,
  twoByTwo,
];
