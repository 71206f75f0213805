import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { installRuncmd, mergeImagerUserData, renderEnrollUserData } from './enroll-user-data.js';

/** Raspberry Pi Imager's user-data for a trixie-based image, as its OS customisation writes it. */
const FIXTURE = join(import.meta.dirname, '../../../test/fixtures/imager/user-data');
const imager = readFileSync(FIXTURE, 'utf8');

const about = {
  edgeId: 'gw-17',
  installUrl: 'http://collector.lan:8080/edge/install/Abc_def-123456789012345678901234',
  expires: '2026-12-12T23:00:00Z',
  mqtt: { user: 'sensors', password: 'pw-0123456789abcdefghijk', port: 1883 },
};
const ours = installRuncmd(about.installUrl);

/**
 * Runs a runcmd string entry as cloud-init does (`sh -c ENTRY`) with a `curl` that records its
 * arguments and answers a script that prints a line.
 */
function runWithCurlStub(entry: string): { args: string[]; stdout: string } {
  const dir = mkdtempSync(join(tmpdir(), 'fb-runcmd-'));
  try {
    writeFileSync(
      join(dir, 'curl'),
      `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done >${dir}/args\necho 'echo install script ran'\n`,
      { mode: 0o755 },
    );
    const r = spawnSync('/bin/sh', ['-c', entry], { env: { PATH: `${dir}:/usr/bin:/bin` } });
    expect(r.status, r.stderr.toString()).toBe(0);
    return {
      args: readFileSync(join(dir, 'args'), 'utf8').split('\n').slice(0, -1),
      stdout: r.stdout.toString(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("merging the install link into Imager's user-data", () => {
  it("keeps every key and comment of Imager's file and appends our entry to its runcmd", () => {
    const merged = mergeImagerUserData(imager, 'user-data', about);
    expect(merged.split('\n')[0]).toBe('#cloud-config');
    const before = parse(imager);
    const after = parse(merged);
    expect(after).toEqual({ ...before, runcmd: [...before.runcmd, ours] });
    // Imager's comments, and the lines of its block scalar (apt.conf), are all still there.
    for (const line of imager
      .split('\n')
      .filter((l) => l.trimStart().startsWith('#') || l.includes('Check-Date')))
      expect(merged).toContain(line.trim());
    // Ours names the edge, the link's expiry and the sensors' login.
    expect(merged).toMatch(/# Fieldbeam edge gw-17: .*\n.*valid until 2026-12-12T23:00:00Z/);
    expect(merged).toContain('user sensors password pw-0123456789abcdefghijk');
    // Imager's entries run first (keyboard, console), ours last.
    expect(after.runcmd.at(-1)).toBe(
      `sh -c 'curl -fsSL --retry 30 --retry-delay 5 --retry-all-errors ${about.installUrl} | sh'`,
    );
  });

  it('creates runcmd when Imager wrote none, and keeps a flow list and list-form entries', () => {
    expect(parse(mergeImagerUserData('#cloud-config\nhostname: a\n', 'f', about))).toEqual({
      hostname: 'a',
      runcmd: [ours],
    });
    expect(parse(mergeImagerUserData('#cloud-config\nhostname: a\nruncmd:\n', 'f', about)).runcmd).toEqual([
      ours,
    ]);
    const flow = '#cloud-config\nruncmd: [[sh, -c, "echo one"], echo two]\n';
    expect(parse(mergeImagerUserData(flow, 'f', about)).runcmd).toEqual([
      ['sh', '-c', 'echo one'],
      'echo two',
      ours,
    ]);
  });

  it('the merged entry runs what the link answers with sh, as cloud-init runs a string entry', () => {
    const cmd = parse(mergeImagerUserData(imager, 'f', about)).runcmd.at(-1) as string;
    const r = runWithCurlStub(cmd);
    expect(r.args).toEqual([
      '-fsSL',
      '--retry',
      '30',
      '--retry-delay',
      '5',
      '--retry-all-errors',
      about.installUrl,
    ]);
    expect(r.stdout).toBe('install script ran\n');
  });

  it.each([
    [
      'two runcmd keys',
      '#cloud-config\nruncmd:\n- a\nhostname: x\nruncmd:\n- b\n',
      /^user-data:5: duplicate key "runcmd": cloud-init keeps only the last/,
    ],
    [
      'a duplicate key further down',
      '#cloud-config\nusers:\n- name: pi\n  shell: /bin/bash\n  shell: /bin/sh\n',
      /^user-data:5: duplicate key "shell"/,
    ],
    ['no #cloud-config line', 'hostname: x\n', /^user-data:1: not a cloud-init user-data file/],
    ['a shell script (firstrun.sh)', '#!/bin/bash\nset +e\n', /^user-data:1: not a cloud-init/],
    ['a list, not a mapping', '#cloud-config\n- a\n', /^user-data:2: the document is not a mapping/],
    ['runcmd that is not a list', '#cloud-config\nruncmd: reboot\n', /^user-data:2: runcmd is not a list/],
    ['broken YAML', '#cloud-config\nusers: [\n', /^user-data:\d: not valid YAML/],
  ])('refuses %s, naming the line', (_, text, message) => {
    expect(() => mergeImagerUserData(text, 'user-data', about)).toThrow(message);
  });

  it("the Imager fixture with a hand-merged second runcmd is refused at that key's line", () => {
    const handMerged = `${imager}runcmd:\n- [/usr/local/sbin/fieldbeam-firstboot]\n`;
    const line = handMerged.split('\n').lastIndexOf('runcmd:') + 1;
    expect(() => mergeImagerUserData(handMerged, 'bootfs/user-data', about)).toThrow(
      new RegExp(`^bootfs/user-data:${line}: duplicate key "runcmd"`),
    );
  });
});

describe('user-data of its own', () => {
  it('is a #cloud-config with only the runcmd entry and the comments naming the edge', () => {
    const text = renderEnrollUserData(about);
    expect(text.split('\n')[0]).toBe('#cloud-config');
    expect(parse(text)).toEqual({ runcmd: [ours] });
    expect(text).toContain('gw-17');
    expect(text).toContain('2026-12-12T23:00:00Z');
    expect(text).toContain('user sensors password pw-0123456789abcdefghijk');
  });

  it('quotes a link sh would otherwise split', () => {
    const odd = "http://collector.lan/it's here/edge/install/x";
    expect(runWithCurlStub(installRuncmd(odd)).args.at(-1)).toBe(odd);
  });
});
