import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, waitFor } from '../harness/index.js';

/**
 * `systemctl reload fieldbeam-edge` runs the unit's ExecReload=, which must work on a Pi with only what
 * the package depends on: Raspberry Pi OS Lite has no procps guarantee, and on Debian 12 `/bin/kill` is
 * procps's. Each program a unit's reload runs must come from an Essential package (always installed)
 * or one the .deb depends on.
 */

const UNITS = ['deploy/pi/systemd/fieldbeam-edge.service', 'deploy/systemd/fieldbeam-edge.service'];

function unitValues(unit: string, key: string): string[] {
  return readFileSync(join(repoRoot(), unit), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

/**
 * A command line as systemd.service(5) reads it, for what these units use: words split at blanks,
 * '...' and "..." quoting, `$$` a literal dollar, `$NAME` and `${NAME}` from `env`.
 */
function systemdWords(line: string, env: Record<string, string>): string[] {
  const words = line.match(/'[^']*'|"[^"]*"|\S+/g) ?? [];
  return words.map((w) =>
    w
      .replace(/^(['"])(.*)\1$/s, '$2')
      .replace(/\$\$|\$\{(\w+)\}|\$(\w+)/g, (m, a?: string, b?: string) =>
        m === '$$' ? '$' : (env[(a ?? b) as string] ?? ''),
      ),
  );
}

/** The Debian package that installed `path` (under merged /usr, tried at its /usr twin too). */
function owner(path: string): string | undefined {
  for (const p of [path, path.startsWith('/usr/') ? path.slice(4) : `/usr${path}`]) {
    const r = spawnSync('dpkg-query', ['-S', p], { encoding: 'utf8' });
    const line = r.stdout.split('\n').find((l) => /^[^ ]+: /.test(l) && !l.startsWith('diversion by'));
    if (r.status === 0 && line) return line.slice(0, line.indexOf(':'));
  }
  return undefined;
}

const essential = (pkg: string) =>
  spawnSync('dpkg-query', ['-W', '-f=${Essential}', pkg], { encoding: 'utf8' }).stdout.trim() === 'yes';

const debDepends = () =>
  (readFileSync(join(repoRoot(), 'deploy/pi/debian/control.in'), 'utf8').match(/^Depends:(.*)$/m)?.[1] ?? '')
    .split(',')
    .map((d) => d.trim().split(/[\s(]/)[0] as string);

describe.each(UNITS)('%s: ExecReload=', (unit) => {
  const [reload, ...more] = unitValues(unit, 'ExecReload');

  it('runs a program from an Essential package or one the .deb depends on', () => {
    expect(reload).toBeDefined();
    expect(more).toEqual([]);
    const program = systemdWords((reload as string).replace(/^[-@:+!]+/, ''), { MAINPID: '1' })[0] as string;
    const pkg = owner(program);
    expect(pkg, `${program} belongs to no installed package`).toBeDefined();
    expect(
      essential(pkg as string) || debDepends().includes(pkg as string),
      `${program} comes from ${pkg}, neither Essential nor in the .deb's Depends`,
    ).toBe(true);
  });

  it('sends SIGHUP to the main process, with nothing on PATH', async () => {
    const main = spawn(
      process.execPath,
      [
        '-e',
        "process.on('SIGHUP', () => { console.log('reloaded'); process.exit(0); }); setInterval(() => {}, 1000); console.log('up');",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    main.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    try {
      await waitFor('the main process', () => (out.includes('up') ? true : undefined));
      const env = { MAINPID: String(main.pid) };
      const [cmd, ...args] = systemdWords(reload as string, env);
      // systemd gives control processes MAINPID, and no PATH search is needed for an absolute path.
      const r = spawnSync(cmd as string, args, { env: { ...env, PATH: '/nonexistent' }, encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      await waitFor('SIGHUP to reach the main process', () => (out.includes('reloaded') ? true : undefined));
    } finally {
      main.kill('SIGKILL');
    }
  });
});
