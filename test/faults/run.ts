#!/usr/bin/env node
/**
 * `pnpm faults [--quick] [--only a,b] [--seed N] [--list]`: every fault scenario against the real
 * system (separate OS processes), then a table; exits 1 if any scenario lost or duplicated an
 * acknowledged reading (drop_oldest: if what it lost differs from its drop counter).
 * `pnpm soak --minutes N [--seed N]`: steady load with random faults, same table.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsUnavailable } from '../harness/index.js';
import { adversarialScenarios } from './adversarial.js';
import { cleanupAll, cleanupOnSignals } from './cleanup.js';
import { clusterScenarios } from './cluster.js';
import { scenarios as faultScenarios, type Mode, type ScenarioResult, seededRandom } from './scenarios.js';
import { runSoak } from './soak.js';
import { formatTable } from './table.js';

const scenarios = [...faultScenarios, ...clusterScenarios, ...adversarialScenarios];

const HELP = `fault runner: drives nats-server, Postgres, collectors, edge agents and MQTT publishers as
separate processes, injects faults, and compares acknowledged readings with Postgres.

  node test/dist/faults/run.js [--quick] [--only NAME,...] [--seed N]   every scenario (pnpm faults);
                     --only takes names or a family prefix (--only adversarial)
  node test/dist/faults/run.js --soak --minutes N [--seed N]           random faults under steady load (pnpm soak)
  node test/dist/faults/run.js --list                                  the scenarios
  --payload number   publishers send bare numbers (the agent stamps receipt time) instead of
                     JSON with sensor time; a resent QoS 1 message then is a new reading

Needs root for the network namespace scenarios (iproute2, nftables). Exit status 1 when a reading
acknowledged to a sensor is missing or stored twice.
`;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string) => process.argv.includes(name);

async function main(): Promise<number> {
  if (flag('--help') || flag('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  if (flag('--list')) {
    for (const s of scenarios) process.stdout.write(`${s.name.padEnd(30)} ${s.summary}\n`);
    return 0;
  }
  const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
  for (const f of ['edge/dist/cli.js', 'cloud/dist/cli.js', 'test/dist/harness/load-worker.js']) {
    if (!existsSync(join(repo, f))) {
      process.stderr.write(`missing ${f}: run pnpm build first\n`);
      return 2;
    }
  }
  const why = netnsUnavailable();
  if (why) process.stderr.write(`warning: ${why}; the blackhole scenario and the soak will fail\n`);
  cleanupOnSignals();
  const seed = Number(arg('--seed') ?? Math.floor(Math.random() * 2 ** 31));
  const payload = arg('--payload') ?? 'json';
  if (payload !== 'json' && payload !== 'number') {
    process.stderr.write('--payload is json or number\n');
    return 2;
  }

  if (flag('--soak')) {
    const minutes = Number(arg('--minutes') ?? 10);
    if (!(minutes > 0 && minutes <= 24 * 60)) {
      process.stderr.write('--minutes must be between 0 and 1440\n');
      return 2;
    }
    process.stderr.write(`soak: ${minutes} min, seed ${seed}\n`);
    const { rows, total } = await runSoak({ minutes, seed, payload });
    process.stdout.write(`\n${formatTable([...rows, total])}`);
    process.stdout.write(total.ok ? '\nsoak: ok\n' : '\nsoak: FAILED\n');
    return total.ok ? 0 : 1;
  }

  const mode: Mode = flag('--quick') ? 'quick' : 'full';
  const only = arg('--only')?.split(',');
  // A name, or a family prefix such as `adversarial` (every `adversarial-...` scenario).
  const matches = (name: string, o: string) => name === o || name.startsWith(`${o}-`);
  const chosen = only ? scenarios.filter((s) => only.some((o) => matches(s.name, o))) : scenarios;
  if (only?.some((o) => !scenarios.some((s) => matches(s.name, o)))) {
    process.stderr.write(`unknown scenario in --only; known: ${scenarios.map((s) => s.name).join(', ')}\n`);
    return 2;
  }
  process.stderr.write(`faults: ${chosen.length} scenarios, ${mode}, seed ${seed}, ${payload} payloads\n`);
  const random = seededRandom(seed);
  const results: ScenarioResult[] = [];
  for (const s of chosen) {
    process.stderr.write(`\n== ${s.name}: ${s.summary}\n`);
    try {
      results.push(await s.run({ mode, random, payload }));
    } catch (err) {
      process.stderr.write(`${s.name} could not run: ${(err as Error).stack}\n`);
      results.push({
        scenario: s.name,
        acked: 0,
        stored: 0,
        lost: 0,
        duplicated: 0,
        recoveries: [],
        peakBuffer: 0,
        expectedLost: 0,
        ok: false,
        notes: [],
        failures: [`could not run: ${(err as Error).message.split('\n')[0]}`],
        seconds: 0,
        tallies: [],
      });
    }
  }
  process.stdout.write(`\n${formatTable(results)}`);
  const failed = results.filter((r) => !r.ok);
  process.stdout.write(
    failed.length === 0
      ? `\nfaults: all ${results.length} scenarios ok (seed ${seed})\n`
      : `\nfaults: ${failed.length} of ${results.length} FAILED: ${failed.map((r) => r.scenario).join(', ')} (seed ${seed})\n`,
  );
  return failed.length === 0 ? 0 : 1;
}

main().then(
  async (code) => {
    await cleanupAll();
    process.exit(code);
  },
  async (err: Error) => {
    process.stderr.write(`faults: ${err.stack ?? err.message}\n`);
    await cleanupAll();
    process.exit(1);
  },
);
