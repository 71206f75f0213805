import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCloudProgram } from '../../cloud/src/cli/program.js';
import { CloudConfigSchema } from '../../cloud/src/config.js';
import { createEdgeProgram } from '../../edge/src/cli/program.js';
import { builtCli, repoRoot, type TempDir, tempDir } from '../harness/index.js';

/**
 * Every command and subcommand of the built CLIs, taken from their definitions (a new command is
 * covered without touching this file), as a user runs them: `--help` prints the usage with every
 * option and exits 0 having touched nothing (no folder, no database, no server), `--version` prints
 * the package version, and an unknown option or command is a usage error (status 2, usage on stderr).
 */

/** A commander command, as the CLIs define them (the test package does not depend on commander). */
type Command = ReturnType<typeof createEdgeProgram>;

const noLogger = () => {
  throw new Error('--help must not make a logger');
};

/** Each command below `root` as its path of names (the root itself is []), depth first. */
function commandPaths(root: Command, prefix: string[] = []): { path: string[]; command: Command }[] {
  return [
    { path: prefix, command: root },
    ...root.commands.flatMap((c) => commandPaths(c, [...prefix, c.name()])),
  ];
}

const versionOf = (pkg: string) =>
  (JSON.parse(readFileSync(join(repoRoot(), pkg, 'package.json'), 'utf8')) as { version: string }).version;

const clis = [
  {
    name: 'fieldbeam-edge',
    file: builtCli.edge,
    program: createEdgeProgram({ createLogger: noLogger }),
    pkg: 'edge',
  },
  {
    name: 'fieldbeam-cloud',
    file: builtCli.cloud,
    program: createCloudProgram({ createLogger: noLogger }),
    pkg: 'cloud',
  },
];

let home: TempDir;
beforeAll(() => {
  home = tempDir('fieldbeam-cli-');
});
afterAll(() => home.remove());

/** Runs a CLI where every folder it could write to by default lies in an empty temp folder. */
function run(file: string, args: string[]) {
  // A fresh empty folder per run: anything in it afterwards was made by the command.
  const dir = join(home.path, String(readdirSync(home.path).length));
  mkdirSync(dir);
  const r = spawnSync(process.execPath, [file, ...args], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      FB_DATA_DIR: join(dir, 'data'),
      // Nothing answers here: a command that tried to connect would fail, not reach a real server.
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
      NATS_URL: 'nats://127.0.0.1:1',
    },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return {
    code: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    created: readdirSync(dir, { recursive: true }),
  };
}

describe.each(clis)('$name', ({ name, file, program, pkg }) => {
  const commands = commandPaths(program);

  it('has the commands the READMEs and scripts use', () => {
    const paths = commands.map((c) => c.path.join(' '));
    const expected =
      name === 'fieldbeam-edge'
        ? ['run', 'check', 'status', 'rejects', 'decode', 'iss-replay']
        : ['run', 'migrate', 'datasets', 'rebuild', 'dead-letters', 'edge', 'edge add', 'edge list'];
    expect(paths).toEqual(expect.arrayContaining(expected));
    // The package README lists every command.
    const readme = readFileSync(join(repoRoot(), pkg, 'README.md'), 'utf8');
    for (const { path } of commands.slice(1)) expect(readme).toContain(`${name} ${path.join(' ')}`);
  });

  it.each(commands.map((c) => [c.path.join(' ') || '(no command)', c] as const))(
    '%s answers --help and --version, and refuses an unknown option',
    (_, { path, command }) => {
      const help = run(file, [...path, '--help']);
      expect(help.code, help.stderr).toBe(0);
      expect(help.stdout).toContain(`Usage: ${[name, ...path].join(' ')} `);
      for (const option of command.options) expect(help.stdout).toContain(option.long ?? option.flags);
      for (const sub of command.commands) expect(help.stdout).toContain(sub.name());
      expect(help.created, 'files made by --help').toEqual([]);

      const version = run(file, [...path, '--version']);
      expect(version.code, version.stderr).toBe(0);
      expect(version.stdout).toBe(`${versionOf(pkg)}\n`);
      expect(version.created).toEqual([]);

      const unknown = run(file, [...path, '--no-such-option']);
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain("error: unknown option '--no-such-option'");
      expect(unknown.stderr).toContain(`Usage: ${[name, ...path].join(' ')} `);
      expect(unknown.created).toEqual([]);

      if (command.commands.length > 0) {
        const nope = run(file, [...path, 'no-such-command']);
        expect(nope.code).toBe(2);
        expect(nope.stderr).toContain("error: unknown command 'no-such-command'");
        expect(nope.stderr).toContain('Usage:');
        for (const sub of command.commands) {
          const viaHelp = run(file, [...path, 'help', sub.name()]);
          expect(viaHelp.code).toBe(0);
          expect(viaHelp.stdout).toContain(`Usage: ${[name, ...path, sub.name()].join(' ')} `);
        }
      }
    },
  );
});

describe('fieldbeam-cloud run --help', () => {
  it('lists every setting the collector reads, with the defaults', () => {
    const help = run(builtCli.cloud, ['run', '--help']);
    for (const setting of Object.keys(CloudConfigSchema.shape))
      expect(help.stdout).toContain(`  ${setting} `);
    expect(help.stdout).toContain('(default: /var/lib/fieldbeam-cloud)');
    expect(help.created).toEqual([]);
  });
});

describe('pnpm demo', () => {
  const demo = join(repoRoot(), 'deploy/demo/dist/demo.js');

  it('answers --help (also after the -- pnpm passes) and --version, and refuses an unknown option', () => {
    for (const args of [['--help'], ['--', '--help']]) {
      const help = run(demo, args);
      expect(help.code, help.stderr).toBe(0);
      expect(help.stdout).toContain('Usage: pnpm demo');
      for (const flag of [
        '--duration',
        '--rate',
        '--mqtt-port',
        '--http-port',
        '--data-dir',
        '--live-iss',
        '--no-iss',
      ])
        expect(help.stdout).toContain(flag);
      expect(help.stdout).toContain('(default: 50)');
      expect(help.created).toEqual([]);
    }
    const version = run(demo, ['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toBe(`${versionOf('deploy/demo')}\n`);
    const unknown = run(demo, ['--no-such-option']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("error: unknown option '--no-such-option'");
    expect(unknown.stderr).toContain('Usage: pnpm demo');
    const bad = run(demo, ['--rate', 'lots']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("option '--rate <n>' argument 'lots' is invalid");
    expect(unknown.created).toEqual([]);
  });
});
