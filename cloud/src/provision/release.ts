import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type EdgeRelease, SAFE_FILE, SHA256 } from './user-data.js';

const BUILD_HINT = 'build one with deploy/pi/build.sh and copy deploy/pi/dist/* there';

/**
 * The release in `dir` (the folder the collector serves at /edge/releases/), checked as a Pi will
 * check it: `release.json` names a version and, for `kind`, a plain file name and SHA-256, and that
 * file is in the folder with that checksum. A Pi provisioned from a release that fails here would
 * fail its first boot instead.
 */
export function readRelease(dir: string, kind: 'deb' | 'bundle' = 'deb'): EdgeRelease {
  const manifest = join(dir, 'release.json');
  let release: EdgeRelease;
  try {
    release = JSON.parse(readFileSync(manifest, 'utf8')) as EdgeRelease;
  } catch (err) {
    throw new Error(`no edge release in ${dir} (${BUILD_HINT}): ${(err as Error).message}`);
  }
  const bad = (what: string) => new Error(`${manifest}: ${what} (${BUILD_HINT})`);
  if (typeof release !== 'object' || release === null) throw bad('not a JSON object');
  if (typeof release.version !== 'string' || release.version === '') throw bad('no version');
  const f = release[kind] as Partial<EdgeRelease['deb']> | undefined;
  if (typeof f !== 'object' || f === null) throw bad(`no ${kind} entry`);
  if (typeof f.file !== 'string' || !SAFE_FILE.test(f.file))
    throw bad(`${kind}.file must be a plain file name (A-Z a-z 0-9 . _ + ~ -)`);
  if (typeof f.sha256 !== 'string' || !SHA256.test(f.sha256))
    throw bad(`${kind}.sha256 must be 64 lowercase hex digits`);
  const path = join(dir, f.file);
  let bytes: Buffer;
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
    bytes = readFileSync(path);
  } catch (err) {
    throw new Error(
      `${path}, which release.json names, cannot be read (${(err as Error).message}): copy it beside release.json`,
    );
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== f.sha256) {
    throw new Error(
      `${path} has SHA-256 ${actual}, release.json says ${f.sha256}: a Pi would refuse it; copy the release again`,
    );
  }
  return release;
}
