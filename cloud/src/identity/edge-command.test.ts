import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runEdgeCommand } from './edge-command.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-edge-cmd-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const sha = 'a'.repeat(64);
function writeRelease(folder: string, version: string): void {
  mkdirSync(folder, { recursive: true });
  writeFileSync(
    join(folder, 'release.json'),
    JSON.stringify({
      version,
      deb: { file: `fieldbeam-edge_${version}_arm64.deb`, sha256: sha },
      bundle: { file: `fieldbeam-edge-${version}-linux-arm64.tar.zst`, sha256: sha },
    }),
  );
}

const add = (id: string, extra: string[], releasesDir?: string) => {
  const out = join(dir, `${id}.user-data`);
  const args = ['add', id, '--url', 'http://collector.lan:8080', '--nats', 'nats://collector.lan:4222'];
  runEdgeCommand([...args, '--out', out, ...extra], join(dir, 'identity'), new PassThrough(), releasesDir);
  return readFileSync(out, 'utf8');
};

describe('fieldbeam-cloud edge add --url', () => {
  it('takes the release from the folder the collector serves (FB_RELEASES_DIR) unless --releases names one', () => {
    writeRelease(join(dir, 'served'), '1.2.3');
    writeRelease(join(dir, 'other'), '9.9.9');
    expect(add('gw-1', [], join(dir, 'served'))).toContain('fieldbeam-edge_1.2.3_arm64.deb');
    expect(add('gw-2', ['--releases', join(dir, 'other')], join(dir, 'served'))).toContain(
      'fieldbeam-edge_9.9.9_arm64.deb',
    );
  });

  it('says where it looked when there is no release', () => {
    expect(() => add('gw-3', [], join(dir, 'empty'))).toThrow(
      /no edge release in .*empty.*deploy\/pi\/build\.sh/,
    );
  });
});
