import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import {
  commandLine,
  descendants,
  freePort,
  repoRoot,
  running,
  type Spawned,
  spawnProcess,
  type TempDir,
  tempDir,
  waitFor,
} from '../harness/index.js';

/**
 * `pnpm demo` whose collector dies under it: the demo says which process ended and how, with its last
 * output, stops everything else it started and exits with status 1, instead of printing status lines
 * of question marks.
 */

let dir: TempDir | undefined;
let demo: Spawned | undefined;

afterAll(async () => {
  await demo?.stop(30_000);
  dir?.remove();
});

it('names the process that died and why, and stops the rest', async () => {
  dir = tempDir('fieldbeam-demo-');
  // The collector's Postgres runs as another user when the test runs as root: it must reach the folder.
  chmodSync(dir.path, 0o755);
  const [httpPort, mqttPort] = await Promise.all([freePort(), freePort()]);
  demo = spawnProcess(
    process.execPath,
    [
      join(repoRoot(), 'deploy/demo/dist/demo.js'),
      '--',
      '--data-dir',
      dir.path,
      '--http-port',
      String(httpPort),
      '--mqtt-port',
      String(mqttPort),
      '--no-iss',
    ],
    { env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
  const d = demo;
  await waitFor(
    'the banner',
    () => (d.output().includes('Fieldbeam demo running') ? true : undefined),
    90_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\ndemo output:\n${d.output().slice(-5000)}`);
  });
  const started = descendants(d.pid);
  const collector = started.find((pid) => /cloud\/dist\/cli\.js run$/.test(commandLine(pid)));
  expect(collector, started.map(commandLine).join('\n')).toBeDefined();

  const exited = new Promise<number | null>((resolve) => d.child.once('exit', (code) => resolve(code)));
  process.kill(collector as number, 'SIGKILL');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 90_000))]);
  expect(code, d.output().slice(-3000)).toBe(1);
  expect(d.output()).toContain(`demo stopping: the collector (pid ${collector}) was killed by SIGKILL`);
  expect(d.output()).toContain('stopped.');
  expect(d.output()).toMatch(/stopped the collector's Postgres \(pid \d+\), left running without it/);
  const left = await waitFor(
    'every process the demo started to exit',
    () => {
      const alive = started.filter(running);
      return alive.length === 0 ? alive : undefined;
    },
    15_000,
  ).catch(() => started.filter(running));
  expect(left).toEqual([]);
}, 240_000);
