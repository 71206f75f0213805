import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { embeddedDatabaseUrl, embeddedPostgresDir } from '@fieldbeam/cloud';
import mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  builtCli,
  freePort,
  repoRoot,
  type Spawned,
  spawnProcess,
  type TempDir,
  tempDir,
  waitFor,
  waitForPort,
} from '../harness/index.js';

/**
 * deploy/README.md's central-side steps, run as written: the same commands in the same order with
 * the same flags, through bash. What differs is only what a test must change: the folders
 * (/etc/fieldbeam, the pid file, FB_DATA_DIR, nats-server's store: temporary ones), and the ports
 * (nats-server's `-p`, `-m`; NATS_URL, FB_HTTP_PORT, FB_EMBEDDED_PG_PORT), through documented
 * options and settings.
 */
const README = readFileSync(join(repoRoot(), 'deploy/README.md'), 'utf8');
const SECTION = '## Identities and the central side, step by step';

/** The lines of the first fenced block of `lang` after `heading`. */
function fenced(heading: string, lang: string): string[] {
  const at = README.indexOf(heading);
  if (at < 0) throw new Error(`deploy/README.md has no "${heading}"`);
  const open = README.indexOf(`\`\`\`${lang}\n`, at);
  const body = README.slice(open + lang.length + 4, README.indexOf('```', open + 3));
  return body.split('\n').filter((l) => l.trim() !== '');
}

/** What the README says today; a change there must be made here too, and still pass. */
const STEPS = [
  'install -d /etc/fieldbeam',
  'install -m 0644 deploy/nats/nats-server.conf /etc/fieldbeam/nats-server.conf',
  'export FB_IDENTITY_DIR=/etc/fieldbeam/identity',
  'fieldbeam-cloud edge add gw-17',
  'nats-server -c /etc/fieldbeam/nats-server.conf -P /run/fieldbeam-nats.pid &',
  'fieldbeam-cloud run &',
  'fieldbeam-cloud edge add gw-18',
  'nats-server --signal reload=/run/fieldbeam-nats.pid',
];
const EDGE_COMMAND =
  '`FB_NKEY_SEED=<the seed edge add printed> fieldbeam-edge run --config /etc/fieldbeam/edge.yaml`';

let tmp: TempDir | undefined;
const running: Spawned[] = [];

afterAll(async () => {
  // Newest first: edges, collector, then nats-server; each by its own pid.
  for (const p of running.reverse()) await p.stop(10_000);
  tmp?.remove();
});

describe('deploy/README.md', () => {
  it('lists the steps this test runs', () => {
    expect(fenced(SECTION, 'sh')).toEqual(STEPS);
    expect(README).toContain(EDGE_COMMAND);
  });

  it('followed as written, brings up nats-server, the collector with its own key and two edges whose readings reach Postgres', async () => {
    tmp = tempDir('fieldbeam-deploy-');
    // The embedded Postgres runs as an unprivileged user, which must reach its folder.
    chmodSync(tmp.path, 0o755);
    const root = tmp.path;
    const etc = join(root, 'etc');
    const [natsPort, monitorPort, httpPort, pgPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);

    const varLib = join(root, 'var-lib');
    mkdirSync(varLib);
    const bin = join(root, 'bin');
    mkdirSync(bin);
    for (const [name, cli] of [
      ['fieldbeam-cloud', builtCli.cloud],
      ['fieldbeam-edge', builtCli.edge],
    ] as const) {
      writeFileSync(join(bin, name), `#!/bin/sh\nexec "${process.execPath}" "${cli}" "$@"\n`, {
        mode: 0o755,
      });
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${bin}:${process.env.PATH}`,
      NATS_URL: `nats://127.0.0.1:${natsPort}`,
      FB_DATA_DIR: join(root, 'data'),
      FB_HTTP_PORT: String(httpPort),
      FB_EMBEDDED_PG_PORT: String(pgPort),
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    };
    const folders = (line: string) =>
      line.replaceAll('/etc/fieldbeam', etc).replaceAll('/run/fieldbeam-nats.pid', join(root, 'nats.pid'));
    const seeds = new Map<string, string>();

    for (const step of fenced(SECTION, 'sh')) {
      const line = folders(step);
      const exported = /^export (\w+)=(\S+)$/.exec(line);
      if (exported) {
        env[exported[1] as string] = exported[2];
        continue;
      }
      if (line.endsWith(' &')) {
        const command = line.slice(0, -2);
        const nats = command.startsWith('nats-server ');
        // nats-server: the ports by its -p and -m options. Its store is the config's /var/lib/nats
        // (2.9 refuses -sd beside a configured store_dir), so the server sees a temporary folder as
        // /var/lib, in a mount namespace of its own.
        const p = nats
          ? spawnProcess(
              'unshare',
              [
                '--mount',
                '--propagation',
                'private',
                'bash',
                '-c',
                `mount --bind ${varLib} /var/lib && exec ${command} -p ${natsPort} -m ${monitorPort}`,
              ],
              { env, cwd: repoRoot() },
            )
          : spawnProcess('bash', ['-c', `exec ${command}`], { env, cwd: repoRoot() });
        running.push(p);
        if (nats) {
          await waitForPort(natsPort).catch((err: Error) => {
            throw new Error(`${step}: ${err.message}\n${p.output()}`);
          });
        } else {
          await waitFor(
            `${step} to be healthy`,
            async () => {
              if (p.child.exitCode !== null) throw new Error(`${step} exited:\n${p.output()}`);
              const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`).catch(() => undefined);
              return res?.status === 200 ? true : undefined;
            },
            90_000,
          );
        }
        continue;
      }
      const r = spawnSync('bash', ['-c', line], { env, cwd: repoRoot(), encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${step} failed (${r.status}):\n${r.stdout}${r.stderr}`);
      const added = /^fieldbeam-cloud edge add (\S+)$/.exec(line);
      if (added) {
        const seed = /seed \(shown once[^)]*\): (SU[A-Z2-7]{56})/.exec(r.stdout)?.[1];
        if (!seed) throw new Error(`${step} printed no seed:\n${r.stdout}`);
        seeds.set(added[1] as string, seed);
      }
    }
    expect([...seeds.keys()]).toEqual(['gw-17', 'gw-18']);

    // Each edge as the README says: its config's nats keys, the printed seed in FB_NKEY_SEED. The
    // server is this test's (plain TCP on loopback); the rest is what a test needs (ports, folders).
    const edgeYaml = fenced(SECTION, 'yaml').join('\n');
    const mqttPorts = new Map<string, number>();
    for (const [edge, seed] of seeds) {
      const edgeEtc = join(root, edge, 'etc');
      mkdirSync(edgeEtc, { recursive: true });
      const mqttPort = await freePort();
      mqttPorts.set(edge, mqttPort);
      writeFileSync(
        join(edgeEtc, 'edge.yaml'),
        `${edgeYaml
          .replace('edge: gw-17', `edge: ${edge}`)
          .replace('tls://collector.example.org:4222', `nats://127.0.0.1:${natsPort}`)}
data_dir: ${join(root, edge, 'data')}
mqtt: { host: 127.0.0.1, port: ${mqttPort} }
http: { host: 127.0.0.1, port: ${await freePort()} }
clock: { sync_check: none }
sensors:
  - topic: s/+station/t
    decoder: { type: number, variable: air_temperature, unit: degC }
`,
      );
      const command = EDGE_COMMAND.slice(1, -1)
        .replace('<the seed edge add printed>', seed)
        .replace('/etc/fieldbeam', edgeEtc);
      const p = spawnProcess('bash', ['-c', `exec env ${command}`], { env, cwd: root });
      running.push(p);
      await waitForPort(mqttPort).catch((err: Error) => {
        throw new Error(`${edge}: ${err.message}\n${p.output()}`);
      });
    }

    for (const [edge, port] of mqttPorts) {
      const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`);
      for (let i = 0; i < 10; i++) await c.publishAsync(`s/${edge}-st/t`, String(i), { qos: 1 });
      await c.endAsync();
    }
    const db = new pg.Pool({
      connectionString: embeddedDatabaseUrl(embeddedPostgresDir(join(root, 'data')), pgPort),
    });
    try {
      const counts = async () =>
        Object.fromEntries(
          (
            await db.query<{ edge: string; n: string }>(
              'SELECT edge, count(*) AS n FROM observations GROUP BY edge ORDER BY edge',
            )
          ).rows.map((r) => [r.edge, Number(r.n)]),
        );
      await waitFor(
        "both edges' readings in Postgres",
        async () => {
          const c = await counts();
          return c['gw-17'] === 10 && c['gw-18'] === 10 ? c : undefined;
        },
        60_000,
      ).catch(async (err: Error) => {
        throw new Error(
          `${err.message}: ${JSON.stringify(await counts())}\n${running.map((p) => p.output().slice(-2000)).join('\n---\n')}`,
        );
      });
    } finally {
      await db.end();
    }
  });
});
