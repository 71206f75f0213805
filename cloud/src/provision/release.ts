import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
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
  let text: string;
  try {
    text = readFileSync(manifest, 'utf8');
  } catch (err) {
    throw new Error(`no edge release in ${dir} (${BUILD_HINT}): ${(err as Error).message}`);
  }
  const release = parseRelease(manifest, text, kind);
  const f = release[kind];
  const path = join(dir, f.file);
  let bytes: Buffer;
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
    bytes = readFileSync(path);
  } catch (err) {
    throw unreadable(path, err);
  }
  checkSha256(path, createHash('sha256').update(bytes).digest('hex'), f.sha256);
  return release;
}

/**
 * readRelease without blocking: for the collector, which checks the release it is about to point a
 * Pi at (the install link) while it serves other requests.
 */
export async function readReleaseAsync(dir: string, kind: 'deb' | 'bundle' = 'deb'): Promise<EdgeRelease> {
  const manifest = join(dir, 'release.json');
  let text: string;
  try {
    text = await readFile(manifest, 'utf8');
  } catch (err) {
    throw new Error(`no edge release in ${dir} (${BUILD_HINT}): ${(err as Error).message}`);
  }
  const release = parseRelease(manifest, text, kind);
  const f = release[kind];
  const path = join(dir, f.file);
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (err) {
    throw unreadable(path, err);
  }
  checkSha256(path, hash.digest('hex'), f.sha256);
  return release;
}

const unreadable = (path: string, err: unknown) =>
  new Error(
    `${path}, which release.json names, cannot be read (${(err as Error).message}): copy it beside release.json`,
  );

function checkSha256(path: string, actual: string, expected: string): void {
  if (actual !== expected) {
    throw new Error(
      `${path} has SHA-256 ${actual}, release.json says ${expected}: a Pi would refuse it; copy the release again`,
    );
  }
}

function parseRelease(manifest: string, text: string, kind: 'deb' | 'bundle'): EdgeRelease {
  const bad = (what: string) => new Error(`${manifest}: ${what} (${BUILD_HINT})`);
  let release: EdgeRelease;
  try {
    release = JSON.parse(text) as EdgeRelease;
  } catch (err) {
    throw bad(`not JSON: ${(err as Error).message}`);
  }
  if (typeof release !== 'object' || release === null) throw bad('not a JSON object');
  if (typeof release.version !== 'string' || release.version === '') throw bad('no version');
  const f = release[kind] as Partial<EdgeRelease['deb']> | undefined;
  if (typeof f !== 'object' || f === null) throw bad(`no ${kind} entry`);
  if (typeof f.file !== 'string' || !SAFE_FILE.test(f.file))
    throw bad(`${kind}.file must be a plain file name (A-Z a-z 0-9 . _ + ~ -)`);
  if (typeof f.sha256 !== 'string' || !SHA256.test(f.sha256))
    throw bad(`${kind}.sha256 must be 64 lowercase hex digits`);
  return release;
}
