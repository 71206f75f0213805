import { describe, expect, it } from 'vitest';
import { releaseContentType, releaseEtag, releaseNameProblem } from './release-route.js';

describe('release file names', () => {
  it.each([
    'release.json',
    'fieldbeam-edge_0.1.0_arm64.deb',
    'fieldbeam-edge-0.1.0-linux-arm64.tar.zst',
    'SHA256SUMS',
    'fieldbeam-edge_0.2.0~rc1+git_arm64.deb',
  ])('accepts %s', (name) => {
    expect(releaseNameProblem(name)).toBeUndefined();
  });

  it.each([
    ['', /1-255/],
    ['x'.repeat(256), /1-255/],
    ['../release.json', /path separator/],
    ['..\\release.json', /path separator/],
    ['/etc/passwd', /path separator/],
    ['..', /"\.\."/],
    ['a..b', /"\.\."/],
    ['.build-key', /dot/],
    ['.', /dot/],
    ['release.json\0', /may only contain/],
    ['a b', /may only contain/],
    ['-rf', /may only contain/],
    ['relé.json', /may only contain/],
  ])('refuses %j', (name, why) => {
    expect(releaseNameProblem(name)).toMatch(why);
  });
});

describe('release content types and validators', () => {
  it('types by suffix, octet-stream otherwise', () => {
    expect(releaseContentType('release.json')).toBe('application/json');
    expect(releaseContentType('a_arm64.deb')).toBe('application/vnd.debian.binary-package');
    expect(releaseContentType('a-linux-arm64.tar.zst')).toBe('application/zstd');
    expect(releaseContentType('SHA256SUMS')).toBe('text/plain; charset=utf-8');
    expect(releaseContentType('notes')).toBe('application/octet-stream');
  });

  it('the ETag changes with size and mtime', () => {
    const a = releaseEtag({ size: 1000, mtimeMs: 1_700_000_000_123.4 });
    expect(a).toBe('"3e8-18bcfe5687b"');
    expect(releaseEtag({ size: 1001, mtimeMs: 1_700_000_000_123.4 })).not.toBe(a);
    expect(releaseEtag({ size: 1000, mtimeMs: 1_700_000_000_124 })).not.toBe(a);
  });
});
