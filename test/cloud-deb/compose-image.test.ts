import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../harness/index.js';

/**
 * deploy/compose/compose.yaml builds the collector image it runs, from deploy/compose/Dockerfile, and
 * that image is the fieldbeam-cloud package `pnpm test:cloud-deb` proves. No Docker engine runs here,
 * so this checks what can be checked without one: the paths compose and the Dockerfile name resolve,
 * the build context holds every file the package build reads, and the image installs that package
 * and runs what it ships, as its user, with its folders.
 */
const root = repoRoot();
const composeFile = join(root, 'deploy/compose/compose.yaml');
const composeDir = dirname(composeFile);
const read = (p: string) => readFileSync(join(root, p), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  volumes?: string[];
}
const compose = parse(readFileSync(composeFile, 'utf8')) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const collector = compose.services.collector as Service;
const context = resolve(composeDir, collector.build?.context ?? '.');
const dockerfilePath = join(context, collector.build?.dockerfile ?? 'Dockerfile');
const dockerfile = existsSync(dockerfilePath) ? readFileSync(dockerfilePath, 'utf8') : '';

/** Dockerfile instructions, continuation lines joined, comments left out. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'))
  .map((l) => {
    const [op = '', ...rest] = l.split(/\s+/);
    return { op: op.toUpperCase(), args: rest };
  });
const stages = (() => {
  const out: { name: string; lines: typeof instructions }[] = [];
  for (const i of instructions) {
    if (i.op === 'FROM') out.push({ name: i.args[2] ?? i.args[0] ?? '', lines: [] });
    else out.at(-1)?.lines.push(i);
  }
  return out;
})();
/** Sources of the COPY instructions that read the build context (not another stage). */
const copiedFromContext = instructions
  .filter((i) => i.op === 'COPY' && !i.args.some((a) => a.startsWith('--from')))
  .flatMap((i) => i.args.filter((a) => !a.startsWith('--')).slice(0, -1));

/** .dockerignore patterns as Docker reads them (the ones used here: names and `**` prefixes). */
const ignored = (() => {
  const file = join(context, '.dockerignore');
  const patterns = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'))
    : [];
  const glob = (part: string) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*');
  const toRegExp = (p: string) => new RegExp(`^${p.split('**/').map(glob).join('(?:.*/)?')}(?:/.*)?$`);
  const res = patterns.map(toRegExp);
  return (path: string) => res.some((r) => r.test(path));
})();
const inContext = (path: string) =>
  copiedFromContext.some((src) => path === src || path.startsWith(`${src.replace(/\/$/, '')}/`)) &&
  !ignored(path);

/** The repository files deploy/cloud/build.sh reads: its build key's list, what it sources and copies. */
function filesTheBuildReads(): string[] {
  const build = read('deploy/cloud/build.sh');
  const keyList = /sha256sum ((?:[^\n]|\\\n)+?)\n\s*echo /.exec(build)?.[1] ?? '';
  const named = keyList
    .replace(/\\\n/g, ' ')
    .split(/\s+/)
    .filter((t) => /^[\w./*-]+$/.test(t));
  const copied = [
    ...build.matchAll(/(?:^|\s)(?:cp|install -m \d+) ((?:(?:cloud|protocol|deploy)\/[\w./-]+\s+)+)/gm),
  ].flatMap((m) => (m[1] ?? '').trim().split(/\s+/));
  const expand = (t: string) => {
    if (!t.includes('*')) return [t];
    const dir = dirname(t);
    const re = new RegExp(`^${t.slice(dir.length + 1).replace(/\*/g, '.*')}$`);
    return (existsSync(join(root, dir)) ? readdir(join(root, dir)).filter((f) => re.test(f)) : []).map(
      (f) => `${dir}/${f}`,
    );
  };
  return [...new Set([...named, ...copied, 'deploy/pi/lib.sh', 'tsconfig.base.json'].flatMap(expand))];
}
const readdir = (dir: string) => readdirSync(dir).filter((f) => statSync(join(dir, f)).isFile());

describe('deploy/compose: the collector image', () => {
  it('compose builds the collector from a Dockerfile in the repository, with the repository as context', () => {
    expect(collector.build, 'compose.yaml: collector has a build section').toBeDefined();
    expect(relative(root, context)).toBe('');
    expect(existsSync(dockerfilePath), `${dockerfilePath} exists`).toBe(true);
  });

  it('every path compose mounts exists and every named volume is declared', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const v of service.volumes ?? []) {
        const source = v.split(':')[0] as string;
        if (source.startsWith('.') || source.startsWith('/')) {
          expect(existsSync(resolve(composeDir, source)), `${name}: ${source}`).toBe(true);
        } else {
          expect(Object.keys(compose.volumes), `${name}: volume ${source}`).toContain(source);
        }
      }
    }
  });

  it('every COPY source exists in the context and is not left out by .dockerignore', () => {
    expect(copiedFromContext.length).toBeGreaterThan(0);
    for (const src of copiedFromContext) {
      expect(existsSync(join(context, src)), `COPY ${src}`).toBe(true);
      expect(ignored(src), `COPY ${src} is not in .dockerignore`).toBe(false);
    }
    // What the image builds inside must not come from a checkout's builds.
    for (const p of ['node_modules', 'cloud/dist', 'protocol/dist', '.git', 'deploy/cloud/dist']) {
      expect(ignored(p), `${p} is in .dockerignore`).toBe(true);
    }
  });

  it('the build stage has every file deploy/cloud/build.sh reads, and the sources it compiles', () => {
    const files = filesTheBuildReads();
    expect(files).toContain('deploy/systemd/fieldbeam-cloud.service');
    expect(files).toContain('deploy/cloud/debian/postinst');
    for (const f of [...files, 'cloud/src/cli.ts', 'cloud/tsconfig.json', 'protocol/src/index.ts']) {
      expect(inContext(f), `${f} is copied into the build stage`).toBe(true);
    }
  });

  it('the image installs the package deploy/cloud/build.sh makes, and runs what it ships, as its user', () => {
    const build = read('deploy/cloud/build.sh');
    expect(build).toContain('deb_name="fieldbeam-cloud_${version}_amd64.deb"');
    const [first, last] = [stages[0], stages.at(-1)];
    expect(stages).toHaveLength(2);
    const run = first?.lines.filter((l) => l.op === 'RUN').map((l) => l.args.join(' '));
    const buildStep = run?.find((r) => r.includes('bash deploy/cloud/build.sh'));
    expect(buildStep, 'the build stage runs deploy/cloud/build.sh').toBeDefined();
    const out = /FB_CLOUD_OUT=(\S+)/.exec(buildStep ?? '')?.[1];
    expect(out).toBeDefined();
    const copyFrom = last?.lines.find((l) => l.op === 'COPY' && l.args.includes(`--from=${first?.name}`));
    expect(copyFrom?.args).toContain(`${out}/`);
    const dest = copyFrom?.args.at(-1) ?? '';
    const install = last?.lines.find((l) => l.op === 'RUN' && l.args.join(' ').includes('apt-get install'));
    expect(install?.args.join(' ')).toContain(`${dest}fieldbeam-cloud_*_amd64.deb`);
    // The same file name the README installs on a Debian host (and test/cloud-deb/proof.sh with it).
    expect(read('deploy/README.md')).toContain(
      'apt-get install -y ./fieldbeam-cloud_*_amd64.deb nats-server',
    );

    // ENTRYPOINT: the launcher the package installs in /usr/lib/fieldbeam-cloud/bin.
    const entry = JSON.parse(
      last?.lines.find((l) => l.op === 'ENTRYPOINT')?.args.join(' ') ?? '[]',
    ) as string[];
    expect(entry).toEqual(['/usr/lib/fieldbeam-cloud/bin/fieldbeam-cloud']);
    expect(build).toContain('lib="$stage/root/usr/lib/fieldbeam-cloud"');
    expect(build).toContain('"$lib/bin/fieldbeam-cloud"');

    // USER: the package's system user, which owns the folders compose mounts volumes on.
    const postinst = read('deploy/cloud/debian/postinst');
    const user = last?.lines.find((l) => l.op === 'USER')?.args[0];
    expect(postinst).toContain(`USER=${user}`);
    for (const v of collector.volumes ?? []) {
      const target = v.split(':')[1] as string;
      expect(postinst, `postinst makes ${target} for ${user}`).toMatch(
        new RegExp(`install -d -o "\\$USER" -g "\\$USER" -m 0\\d{3} (${target}|"\\$IDENTITY")`),
      );
    }
    expect(postinst).toContain('IDENTITY=/etc/fieldbeam/identity');
  });
});
