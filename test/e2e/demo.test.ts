import { spawnSync } from 'node:child_process';
import { chmodSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import {
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
 * `pnpm demo` as a user runs it (the built demo, after `pnpm build`), with its own data folder and
 * ports: within a couple of minutes the read API lists the demo's datasets, serves items, and the
 * first one-minute window is built and exported to GeoParquet; Ctrl-C (SIGINT) then stops every
 * process it started.
 */

let dir: TempDir | undefined;
let demo: Spawned | undefined;

afterAll(async () => {
  await demo?.stop(30_000);
  dir?.remove();
});

function files(root: string, ext: string): string[] {
  try {
    return readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith(ext));
  } catch {
    return [];
  }
}

const getJson = async (url: string) => {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return r.ok ? ((await r.json()) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};

it('shows datasets, items and a built GeoParquet window, and stops everything on Ctrl-C', async () => {
  dir = tempDir('fieldbeam-demo-');
  // The collector's Postgres runs as another user when the test runs as root: it must reach the folder.
  chmodSync(dir.path, 0o755);
  const [httpPort, mqttPort] = await Promise.all([freePort(), freePort()]);
  demo = spawnProcess(
    process.execPath,
    [
      join(repoRoot(), 'deploy/demo/dist/demo.js'),
      '--data-dir',
      dir.path,
      '--http-port',
      String(httpPort),
      '--mqtt-port',
      String(mqttPort),
    ],
    { env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
  const d = demo;
  const api = `http://127.0.0.1:${httpPort}`;
  const fail = (what: string) => (err: Error) => {
    throw new Error(`${err.message} (${what})\ndemo output:\n${d.output().slice(-5000)}`);
  };
  await waitFor(
    'the banner',
    // The banner's last line: the checks below read all of it, not the first of its writes.
    () => (d.output().includes('(Ctrl-C stops the demo)') ? true : undefined),
    90_000,
  ).catch(fail('banner'));
  const parquetDir = join(dir.path, 'cloud', 'objects', 'datasets');
  expect(d.output()).toContain(`${api}/collections`);
  expect(d.output()).toContain(`${api}/collections/demo_sensors/items`);
  expect(d.output()).toContain(parquetDir);
  // The banner gives the console's URL; a browser asking for it gets the console's page.
  expect(d.output()).toContain(`Console: ${api}/`);
  const shell = await fetch(`${api}/`, { headers: { Accept: 'text/html' } });
  expect(shell.status).toBe(200);
  expect(await shell.text()).toMatch(/src="\/console\/app\.[A-Z0-9]+\.js"/);

  const collections = await waitFor('the collections', async () => {
    const c = (await getJson(`${api}/collections`)) as { collections?: { id: string }[] } | undefined;
    return c?.collections?.length ? c.collections.map((x) => x.id) : undefined;
  });
  expect(collections).toEqual(['demo_sensors', 'iss']);
  await waitFor('demo sensor items', async () => {
    const items = (await getJson(`${api}/collections/demo_sensors/items?limit=5`)) as
      | { features?: unknown[] }
      | undefined;
    return items?.features?.length ? true : undefined;
  }).catch(fail('items'));
  // The first window closes within a minute of the first reading, then grace and build.
  const built = await waitFor(
    'a built window and its GeoParquet file',
    async () => {
      const w = (await getJson(`${api}/collections/demo_sensors/windows`)) as
        | { windows?: { version: number | null; state: string }[] }
        | undefined;
      const parquet = files(join(parquetDir, 'demo_sensors'), '.parquet');
      return w?.windows?.some((x) => x.version !== null) && parquet.length > 0 ? parquet : undefined;
    },
    150_000,
  ).catch(fail('built window'));
  expect(built[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\/\d+\.parquet$/);

  // The banner's commands to operate the demo, run as printed (from the checkout, as a user would).
  const commands = d
    .output()
    .split('\n')
    .map((l) => /^ {2}(env \$\(cat \S+\) pnpm -s cloud .*?)(\s{2,}\S.*)?$/.exec(l)?.[1])
    .filter((c): c is string => c !== undefined);
  expect(commands.map((c) => c.split(' pnpm -s cloud ')[1]?.split(' ').slice(0, 2).join(' '))).toEqual([
    'edge list',
    'edge status',
    'sensors add',
  ]);
  const sh = (command: string) => spawnSync('bash', ['-c', command], { cwd: repoRoot(), encoding: 'utf8' });
  const list = sh(commands[0] as string);
  expect(list.status, list.stderr).toBe(0);
  expect(list.stdout).toMatch(/^demo-edge\s+yes\s/m);
  const add = sh(commands[2] as string);
  expect(add.status, add.stderr).toBe(0);
  expect(add.stdout).toMatch(/added demo\/\+station\/light \(decoder number\), revision \d+/);
  // The new sensor's readings arrive without anything done on the edge's side.
  const status = await waitFor('the centrally added sensor reporting a reading', async () => {
    spawnSync('mosquitto_pub', ['-p', String(mqttPort), '-q', '1', '-t', 'demo/barn/light', '-m', '412']);
    const r = sh(commands[1] as string);
    return r.status === 0 && /demo\/\+station\/light\s+number\s+central\s+last reading \d{4}-/.test(r.stdout)
      ? r.stdout
      : undefined;
  }).catch(fail('operating commands'));
  expect(status).toMatch(/central config\s+revision \d+ applied/);

  const started = descendants(d.pid);
  expect(started.length).toBeGreaterThanOrEqual(4); // nats-server, collector (+ Postgres), edge, ISS replay
  const exited = new Promise<number | null>((resolve) => d.child.once('exit', (code) => resolve(code)));
  d.child.kill('SIGINT');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 90_000))]);
  expect(code, d.output().slice(-3000)).toBe(0);
  expect(d.output()).toContain('stopped.');
  const left = await waitFor(
    'every process the demo started to exit',
    () => {
      const alive = started.filter(running);
      return alive.length === 0 ? alive : undefined;
    },
    15_000,
  ).catch(() => started.filter(running));
  expect(left).toEqual([]);
}, 300_000);
