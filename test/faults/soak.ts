import { between, type ScenarioResult, seededRandom } from './scenarios.js';
import { FaultSystem, sleep, type Tally, tally } from './system.js';

export const soakFaults = [
  'uplink-cut',
  'uplink-blackhole',
  'edge-kill9',
  'collector-kill9',
  'nats-kill9',
  'postgres-restart',
] as const;
export type SoakFault = (typeof soakFaults)[number];

interface SoakEvent {
  label: string;
  /** Sequence number each publisher was at when the event began (its window starts there). */
  start: Map<string, number>;
  recovery: number | null;
  peak: number;
  notes: string[];
}

export interface SoakOptions {
  minutes: number;
  seed: number;
  /** Total readings per second over both edges. */
  rate?: number;
  payload?: 'json' | 'number';
  log?: (line: string) => void;
}

/**
 * Steady load (two edges, 2,000 readings/s together; edge a behind the TCP proxy, edge b in a network
 * namespace) into two collectors, with one random fault after another from `soakFaults`: each held
 * for a random time, cleared, waited out until recovered, then a short quiet spell. One row per event
 * (the readings published from its start to the next event's start), then the total.
 */
export async function runSoak(opts: SoakOptions): Promise<{ rows: ScenarioResult[]; total: ScenarioResult }> {
  const random = seededRandom(opts.seed);
  const rate = opts.rate ?? 2000;
  const seconds = opts.minutes * 60;
  const started = Date.now();
  const sys = await FaultSystem.start({
    scenario: 'soak',
    collectors: 2,
    edges: [
      { name: 'a', uplink: 'proxy', rate: rate / 2, seconds: seconds + 30 },
      { name: 'b', uplink: 'netns', rate: rate / 2, seconds: seconds + 30 },
    ],
    payload: opts.payload,
    log: opts.log,
  });
  const events: SoakEvent[] = [];
  const failures: string[] = [];
  try {
    const [ea, eb] = sys.edges;
    if (!ea || !eb) throw new Error('topology');
    const sent = async () => {
      const m = new Map<string, number>();
      for (const e of sys.edges) m.set(e.station, (await e.load?.snapshot())?.sent ?? 0);
      return m;
    };
    await sys.startLoads();
    events.push({ label: 'soak steady load', start: new Map(), recovery: null, peak: 0, notes: [] });
    const end = started + seconds * 1000;
    const remaining = () => (end - Date.now()) / 1000;
    await sleep(Math.min(5, seconds / 6) * 1000);
    let n = 0;
    while (remaining() > 10) {
      const kind = soakFaults[Math.floor(random() * soakFaults.length)] as SoakFault;
      const bound = (lo: number, hi: number) =>
        Math.max(0.5, Math.min(between(random, lo, hi), remaining() - 8));
      const ev: SoakEvent = { label: '', start: await sent(), recovery: null, peak: 0, notes: [] };
      const prev = events[events.length - 1];
      if (prev) prev.peak = sys.resetWindowPeak();
      let at = Date.now();
      let what = '';
      switch (kind) {
        case 'uplink-cut': {
          const d = bound(5, 25);
          await sys.cutUplink(ea, 'refuse');
          await sleep(d * 1000);
          await sys.restoreUplink(ea);
          what = `edge a refused ${d.toFixed(1)} s`;
          break;
        }
        case 'uplink-blackhole': {
          const d = bound(5, 40);
          await sys.cutUplink(eb, 'blackhole');
          await sleep(d * 1000);
          await sys.restoreUplink(eb);
          what = `edge b blackholed ${d.toFixed(1)} s`;
          break;
        }
        case 'edge-kill9': {
          const e = random() < 0.5 ? ea : eb;
          const d = bound(0.2, 3);
          await e.agent.kill();
          await sleep(d * 1000);
          at = Date.now();
          await e.agent.start();
          what = `edge ${e.spec.name} down ${d.toFixed(1)} s`;
          break;
        }
        case 'collector-kill9': {
          const i = Math.floor(random() * sys.collectors.length);
          const c = sys.collectors[i];
          if (!c) throw new Error('topology');
          const d = bound(1, 8);
          await c.kill();
          await sleep(d * 1000);
          at = Date.now();
          await c.start();
          what = `collector ${i + 1} down ${d.toFixed(1)} s`;
          break;
        }
        case 'nats-kill9': {
          const d = bound(1, 10);
          await sys.nats.kill();
          await sleep(d * 1000);
          at = Date.now();
          await sys.nats.restart();
          what = `down ${d.toFixed(1)} s`;
          break;
        }
        case 'postgres-restart': {
          const d = bound(2, 15);
          await sys.postgres.stop();
          await sleep(d * 1000);
          at = Date.now();
          await sys.postgres.start();
          what = `down ${d.toFixed(1)} s`;
          break;
        }
      }
      if (kind === 'uplink-cut' || kind === 'uplink-blackhole') at = Date.now();
      n++;
      ev.label = `soak#${n} ${kind}`;
      ev.notes.push(what);
      sys.log(`${ev.label}: ${what}; waiting for recovery`);
      ev.recovery = await sys.recovery(at, 180_000);
      sys.log(
        `${ev.label}: recovered in ${ev.recovery === null ? 'TIMEOUT' : `${ev.recovery.toFixed(1)} s`}`,
      );
      events.push(ev);
      if (remaining() > 10) await sleep(Math.min(between(random, 2, 6), remaining() - 8) * 1000);
    }
    const last = events[events.length - 1];
    if (last) last.peak = sys.resetWindowPeak();
    sys.log('stopping the load');
    const results = await sys.stopLoads();
    const settle = await sys.settle();
    if (settle) failures.push(settle);
    failures.push(...sys.crashes);
    const rows = await sys.check(results);

    const out: ScenarioResult[] = [];
    const allTallies: Tally[] = [];
    for (const [i, ev] of events.entries()) {
      const next = events[i + 1];
      const tallies: Tally[] = [];
      for (const [station, r] of rows) {
        const from = ev.start.get(station) ?? 0;
        const to = next?.start.get(station) ?? r.result.sent;
        tallies.push(tally(station, r.result, r.rows, from, to, i === 0 ? r.unknownRows : 0));
      }
      out.push(
        toRow(
          ev.label,
          tallies,
          ev.recovery === null && i > 0 ? [null] : i > 0 ? [ev.recovery] : [],
          ev.peak,
          ev.notes,
          0,
        ),
      );
    }
    for (const [station, r] of rows) {
      allTallies.push(tally(station, r.result, r.rows, 0, r.result.sent, r.unknownRows));
      if (r.result.errors > 0) failures.push(`${station}: ${r.result.errors} publishes failed`);
    }
    const total = toRow(
      `soak total (${opts.minutes} min, seed ${opts.seed})`,
      allTallies,
      out.flatMap((r) => r.recoveries),
      sys.peak,
      [`${events.length - 1} faults`],
      (Date.now() - started) / 1000,
    );
    total.failures.push(...failures);
    total.ok = total.ok && failures.length === 0 && out.every((r) => r.ok);
    return { rows: out, total };
  } finally {
    await sys.close();
  }
}

function toRow(
  label: string,
  tallies: Tally[],
  recoveries: (number | null)[],
  peak: number,
  notes: string[],
  seconds: number,
): ScenarioResult {
  const sum = (k: keyof Tally) => tallies.reduce((s, t) => s + (t[k] as number), 0);
  const failures: string[] = [];
  for (const t of tallies) {
    if (t.lost > 0) failures.push(`${t.station} lost e.g. seq ${t.lostExamples.join(', ')}`);
    if (t.duplicated > 0)
      failures.push(`${t.station} duplicated e.g. seq ${t.duplicatedExamples.join(', ')}`);
  }
  if (sum('unknownRows') > 0) failures.push(`${sum('unknownRows')} rows no publisher sent`);
  if (recoveries.some((r) => r === null)) failures.push('did not recover within 180 s');
  const unacked = sum('storedUnacked');
  return {
    scenario: label,
    acked: sum('acked'),
    stored: sum('stored'),
    lost: sum('lost'),
    duplicated: sum('duplicated'),
    recoveries,
    peakBuffer: peak,
    expectedLost: 0,
    ok: failures.length === 0,
    notes: unacked > 0 ? [...notes, `${unacked} stored without a PUBACK (allowed)`] : notes,
    failures,
    seconds,
    tallies,
  };
}
