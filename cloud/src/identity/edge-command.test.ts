import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { FIRMWARE_TOPICS } from '../provision/edge-sensors.js';
import { enrollmentsDir, openEnrollment, tokenHash } from '../provision/enrollment.js';
import { type EdgeCommandContext, runEdgeCommand } from './edge-command.js';
import { addEdge } from './edge-identity.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-edge-cmd-'));
});
afterEach(() => {
  chmodSync(dir, 0o700);
  rmSync(dir, { recursive: true, force: true });
});

/** A release folder as deploy/pi/build.sh leaves it: release.json and the package it names. */
function writeRelease(folder: string, version: string): void {
  mkdirSync(folder, { recursive: true });
  const deb = `fieldbeam-edge_${version}_arm64.deb`;
  const bytes = `package ${version}`;
  writeFileSync(join(folder, deb), bytes);
  writeFileSync(
    join(folder, 'release.json'),
    JSON.stringify({
      version,
      deb: { file: deb, sha256: createHash('sha256').update(bytes).digest('hex') },
      bundle: { file: `fieldbeam-edge-${version}-linux-arm64.tar.zst`, sha256: 'b'.repeat(64) },
    }),
  );
}

interface Run {
  status: number | Error;
  out: string;
  err: string;
}

function run(args: string[], context: Partial<EdgeCommandContext> = {}): Run {
  const out = new PassThrough();
  const err = new PassThrough();
  let status: number | Error;
  try {
    const resolved = args.map((a) => a.replace(/^DIR(?=\/|$)/, dir));
    status = runEdgeCommand(resolved, { identityDir: join(dir, 'identity'), ...context }, out, err);
  } catch (e) {
    status = e as Error;
  }
  return { status, out: String(out.read() ?? ''), err: String(err.read() ?? '') };
}

/** `DIR` at the start of an argument stands for the test's folder (made when the test runs). */
const urlArgs = (id: string, out = `DIR/${id}.user-data`) => [
  'add',
  id,
  '--url',
  'http://collector.lan:8080',
  '--nats',
  'nats://collector.lan:4222',
  '--out',
  out,
];

const add = (id: string, extra: string[], releasesDir?: string) => {
  const r = run([...urlArgs(id), ...extra], { releasesDir });
  if (r.status !== 0) throw r.status instanceof Error ? r.status : new Error(`status ${r.status}: ${r.err}`);
  return r.out;
};

/** The config and seed sealed in the enrollment whose install link `printed` shows. */
function enrolled(printed: string) {
  const token = /curl -fsSL \S+\/edge\/install\/([A-Za-z0-9_-]+) \| sudo sh/.exec(printed)?.[1] ?? '';
  const file = join(enrollmentsDir(join(dir, 'identity')), `${tokenHash(token)}.json`);
  const { secret, edge, expires } = openEnrollment(token, readFileSync(file, 'utf8'));
  return { token, file, edge, expires, secret, config: parse(secret.config) };
}

/** Every file under `folder` (recursively) with its bytes and mode. */
function snapshot(folder: string): Record<string, string> {
  if (!existsSync(folder)) return {};
  const files = readdirSync(folder, { recursive: true, encoding: 'utf8' });
  return Object.fromEntries(
    files.map((f) => {
      const path = join(folder, f);
      const st = statSync(path);
      return [f, st.isDirectory() ? `dir ${st.mode}` : `${st.mode} ${readFileSync(path, 'base64')}`];
    }),
  );
}

describe('fieldbeam-cloud edge add --url', () => {
  it('takes the release from the folder the collector serves (FB_RELEASES_DIR) unless --releases names one', () => {
    writeRelease(join(dir, 'served'), '1.2.3');
    writeRelease(join(dir, 'other'), '9.9.9');
    expect(add('gw-1', [], join(dir, 'served'))).toContain('fieldbeam-edge_1.2.3_arm64.deb');
    expect(add('gw-2', ['--releases', join(dir, 'other')], join(dir, 'served'))).toContain(
      'fieldbeam-edge_9.9.9_arm64.deb',
    );
  });

  it('seals the config and seed in a one-time enrollment and prints the install link instead of the seed', () => {
    writeRelease(join(dir, 'rel'), '1.0.0');
    const before = Date.now();
    const r = run(urlArgs('gw-e'), { releasesDir: join(dir, 'rel') });
    expect(r.status, r.err).toBe(0);
    const e = enrolled(r.out);
    expect(e.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(e.edge).toBe('gw-e');
    expect(e.secret.seed).toMatch(/^SU[A-Z2-7]{56}$/);
    expect(e.config.edge).toBe('gw-e');
    expect(e.config.nats.servers).toEqual(['nats://collector.lan:4222']);
    // The seed is shown nowhere: not printed, not in the user-data, not in clear on the collector.
    expect(r.out).not.toContain(e.secret.seed);
    expect(r.out).not.toMatch(/^seed/m);
    const file = readFileSync(e.file, 'utf8');
    expect(file).not.toContain(e.secret.seed);
    expect(file).not.toContain('nats://');
    expect(statSync(e.file).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(e.file)).mode & 0o777).toBe(0o700);
    // Default lifetime: seven days.
    const days = (e.expires.getTime() - before) / 86_400_000;
    expect(days).toBeGreaterThan(6.99);
    expect(days).toBeLessThan(7.01);
    const expiry = e.expires.toISOString().replace(/\.\d{3}Z$/, 'Z');
    expect(r.out).toContain(
      `one-line install (on the Pi, once, until ${expiry}): curl -fsSL http://collector.lan:8080/edge/install/${e.token} | sudo sh`,
    );
    // The user-data holds the link, not the config or the seed.
    const userData = readFileSync(join(dir, 'gw-e.user-data'), 'utf8');
    expect(userData.split('\n')[0]).toBe('#cloud-config');
    expect(userData).toContain(`edge gw-e`);
    expect(userData).toContain(expiry);
    expect(userData).not.toContain(e.secret.seed);
    expect(parse(userData)).toEqual({
      runcmd: [
        `sh -c 'curl -fsSL --retry 30 --retry-delay 5 --retry-all-errors http://collector.lan:8080/edge/install/${e.token} | sh'`,
      ],
    });
  });

  it("--user-data-from merges into Imager's user-data, in place when --out names the same file", () => {
    writeRelease(join(dir, 'rel'), '1.0.0');
    const bootfs = join(dir, 'bootfs');
    mkdirSync(bootfs);
    const imager = readFileSync(join(import.meta.dirname, '../../../test/fixtures/imager/user-data'), 'utf8');
    writeFileSync(join(bootfs, 'user-data'), imager);
    const r = run([...urlArgs('gw-17', 'DIR/bootfs/user-data'), '--user-data-from', 'DIR/bootfs/user-data'], {
      releasesDir: join(dir, 'rel'),
    });
    expect(r.status, r.err).toBe(0);
    const { token, secret } = enrolled(r.out);
    const merged = readFileSync(join(bootfs, 'user-data'), 'utf8');
    expect(readdirSync(bootfs)).toEqual(['user-data']);
    const before = parse(imager);
    expect(parse(merged)).toEqual({
      ...before,
      runcmd: [
        ...before.runcmd,
        `sh -c 'curl -fsSL --retry 30 --retry-delay 5 --retry-all-errors http://collector.lan:8080/edge/install/${token} | sh'`,
      ],
    });
    expect(merged).toContain('# This file is generated by Raspberry Pi Imager');
    expect(merged).not.toContain(secret.seed);
    expect(r.out).toMatch(
      /user-data written to .*bootfs\/user-data: .*bootfs\/user-data with the install link appended/,
    );
  });

  it('--token-ttl sets the lifetime; --rotate removes the earlier enrollments of that edge only', () => {
    writeRelease(join(dir, 'rel'), '1.0.0');
    const first = enrolled(add('gw-r', ['--token-ttl', 'PT12H'], join(dir, 'rel')));
    expect(first.expires.getTime() - Date.now()).toBeLessThanOrEqual(12 * 3_600_000);
    expect(first.expires.getTime() - Date.now()).toBeGreaterThan(11.9 * 3_600_000);
    const other = enrolled(add('gw-o', [], join(dir, 'rel')));
    const second = enrolled(add('gw-r', ['--rotate'], join(dir, 'rel')));
    expect(readdirSync(enrollmentsDir(join(dir, 'identity'))).sort()).toEqual(
      [basename(other.file), basename(second.file)].sort(),
    );
    expect(second.secret.seed).not.toBe(first.secret.seed);
  });

  it('says where it looked when there is no release', () => {
    expect(() => add('gw-3', [], join(dir, 'empty'))).toThrow(
      /no edge release in .*empty.*deploy\/pi\/build\.sh/,
    );
  });

  it('generates a broker open to the LAN with one user whose password is printed once, and auto-registers firmware topics', () => {
    writeRelease(join(dir, 'rel'), '1.0.0');
    const r = run(urlArgs('gw-4'), { releasesDir: join(dir, 'rel') });
    expect(r.status).toBe(0);
    const password = /MQTT for sensors .*: mqtt:\/\/<the Pi>:1883 user sensors password (\S+)/.exec(
      r.out,
    )?.[1];
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const { config } = enrolled(r.out);
    expect(readFileSync(join(dir, 'gw-4.user-data'), 'utf8')).toContain(
      `MQTT for sensors: mqtt://<this Pi>:1883 user sensors password ${password}`,
    );
    expect(config.mqtt).toEqual({ host: '0.0.0.0', port: 1883, users: [{ username: 'sensors', password }] });
    expect(config.auto_register).toEqual({ enabled: true, topics: [...FIRMWARE_TOPICS] });
    expect(config.sensors).toEqual([]);
    // A second edge gets another password.
    const r2 = run(urlArgs('gw-5'), { releasesDir: join(dir, 'rel') });
    expect(r2.out).not.toContain(password as string);
  });

  it('takes sensors from --sensor: TOPIC=DECODER configured, a bare TOPIC auto-registered', () => {
    writeRelease(join(dir, 'rel'), '1.0.0');
    const r = run(
      [
        ...urlArgs('gw-6'),
        '--sensor',
        'zigbee2mqtt/#',
        '--sensor',
        'garden/+station/temp=number:air_temperature:degC',
        '--sensor',
        'tele/+/SENSOR=tasmota',
        '--mqtt-user',
        'devices',
        '--mqtt-port',
        '1884',
      ],
      { releasesDir: join(dir, 'rel') },
    );
    expect(r.status).toBe(0);
    const { config } = enrolled(r.out);
    expect(config.sensors).toEqual([
      {
        topic: 'garden/+station/temp',
        decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
      },
      { topic: 'tele/+/SENSOR', decoder: { type: 'tasmota' } },
    ]);
    expect(config.auto_register.topics).toEqual(['zigbee2mqtt/#']);
    expect(config.mqtt.port).toBe(1884);
    expect(config.mqtt.users[0].username).toBe('devices');
  });
});

describe('a failing edge add leaves no trace', () => {
  const identity = () => join(dir, 'identity');
  const bad: [string, string[], RegExp, (() => void)?][] = [
    ['--url without --nats', ['add', 'pi-02', '--url', 'http://collector:8080'], /--url needs --nats/],
    [
      'an option that needs --url',
      ['add', 'pi-02', '--nats', 'nats://c:4222'],
      /--nats only apply with --url/,
    ],
    [
      'a URL that is not one',
      [...urlArgs('pi-02').map((a) => (a === 'http://collector.lan:8080' ? 'collector' : a))],
      /not a URL/,
    ],
    [
      'an ftp URL',
      [...urlArgs('pi-02').map((a) => (a === 'http://collector.lan:8080' ? 'ftp://c' : a))],
      /http/,
    ],
    [
      'a bad NATS URL',
      [...urlArgs('pi-02').map((a) => (a === 'nats://collector.lan:4222' ? 'http://c:4222' : a))],
      /NATS server/,
    ],
    ['a bad edge id', urlArgs('pi.02'), /must be 1-64/],
    ['the reserved id', urlArgs('collector'), /reserved/],
    ['an id already registered', urlArgs('gw-0'), /already registered; use --rotate/],
    [
      'no release.json',
      [...urlArgs('pi-02'), '--releases', join('/nonexistent', 'rel')],
      /no edge release in/,
    ],
    [
      'a release.json without the package',
      [...urlArgs('pi-02'), '--releases', 'DIR/REL'],
      /cannot be read .*copy it beside release.json/,
      () => rmSync(join(dir, 'REL', 'fieldbeam-edge_1.0.0_arm64.deb')),
    ],
    [
      'a package that does not match its checksum',
      [...urlArgs('pi-02'), '--releases', 'DIR/REL'],
      /has SHA-256 .* a Pi would refuse it/,
      () => writeFileSync(join(dir, 'REL', 'fieldbeam-edge_1.0.0_arm64.deb'), 'other bytes'),
    ],
    [
      'a release.json that is not one',
      [...urlArgs('pi-02'), '--releases', 'DIR/REL'],
      /deb.sha256 must be 64/,
      () =>
        writeFileSync(
          join(dir, 'REL', 'release.json'),
          JSON.stringify({ version: '1', deb: { file: 'x.deb', sha256: 'nope' } }),
        ),
    ],
    [
      'an output folder that does not exist',
      urlArgs('pi-02', 'DIR/nowhere/x.user-data'),
      /--out .*cannot write/,
    ],
    ['an output that is a folder', urlArgs('pi-02', 'DIR'), /--out .*is a folder/],
    [
      'a sensor with an unknown decoder',
      [...urlArgs('pi-02'), '--sensor', 'a/b=foo'],
      /unknown decoder "foo"/,
    ],
    [
      'a number sensor without a station',
      [...urlArgs('pi-02'), '--sensor', 'a/b=number:t:degC'],
      /\+station/,
    ],
    [
      'a sensor topic with a bad wildcard',
      [...urlArgs('pi-02'), '--sensor', 'a/#/b=tasmota'],
      /'#' may only be the last/,
    ],
    ['a bad MQTT port', [...urlArgs('pi-02'), '--mqtt-port', '70000'], /whole number from 1 to 65535/],
    [
      'a token lifetime that is not a duration',
      [...urlArgs('pi-02'), '--token-ttl', '7d'],
      /--token-ttl 7d: .*ISO-8601/,
    ],
    ['a token lifetime of months', [...urlArgs('pi-02'), '--token-ttl', 'P1M'], /--token-ttl P1M/],
    ['a token lifetime over a year', [...urlArgs('pi-02'), '--token-ttl', 'P400D'], /at most P366D/],
    [
      '--token-ttl without --url',
      ['add', 'pi-02', '--token-ttl', 'P1D'],
      /--token-ttl only apply with --url/,
    ],
    [
      '--user-data-from without --url',
      ['add', 'pi-02', '--user-data-from', 'DIR/imager'],
      /--user-data-from only apply with --url/,
    ],
    [
      "Imager's user-data missing",
      [...urlArgs('pi-02'), '--user-data-from', 'DIR/nothing-here'],
      /--user-data-from .*nothing-here: cannot read it/,
    ],
    [
      "Imager's user-data with two runcmd keys",
      [...urlArgs('pi-02'), '--user-data-from', 'DIR/imager'],
      /imager:4: duplicate key "runcmd"/,
      () => writeFileSync(join(dir, 'imager'), '#cloud-config\nruncmd:\n- a\nruncmd:\n- b\n'),
    ],
    [
      "Imager's user-data that is not a cloud-config",
      [...urlArgs('pi-02'), '--user-data-from', 'DIR/imager'],
      /imager:1: not a cloud-init user-data file/,
      () => writeFileSync(join(dir, 'imager'), 'hostname: pi\n'),
    ],
  ];

  it.each(bad)('%s', (_, args, message, breakInput) => {
    const rel = join(dir, 'REL');
    writeRelease(rel, '1.0.0');
    addEdge(identity(), 'gw-0');
    breakInput?.();
    const before = snapshot(identity());
    const cwdBefore = snapshot(dir);
    const r = run(args, { releasesDir: rel });
    expect(r.status).not.toBe(0);
    const text = r.status instanceof Error ? r.status.message : r.err;
    expect(text).toMatch(message);
    if (r.status instanceof Error) expect(text).toMatch(/nothing was registered or written/);
    expect(r.out).not.toMatch(/registered; key|seed/);
    expect(snapshot(identity())).toEqual(before);
    expect(existsSync(enrollmentsDir(identity()))).toBe(false);
    expect(snapshot(dir)).toEqual(cwdBefore);
    expect(existsSync(join(dir, 'pi-02.user-data'))).toBe(false);

    // Fixed, the same command succeeds without --rotate.
    writeRelease(rel, '1.0.0');
    const good = run(urlArgs('pi-02'), { releasesDir: rel });
    expect(good.status, good.err).toBe(0);
    expect(good.out).toMatch(/edge pi-02 registered/);
    expect(existsSync(join(dir, 'pi-02.user-data'))).toBe(true);
    expect(readdirSync(enrollmentsDir(identity()))).toHaveLength(1);
  });

  it('takes the enrollment and the user-data back when the registry cannot be committed', () => {
    const rel = join(dir, 'REL');
    writeRelease(rel, '1.0.0');
    addEdge(identity(), 'gw-0');
    const imager = join(dir, 'imager');
    writeFileSync(imager, '#cloud-config\nhostname: pi\n');
    // A folder where the commit stages the authorization: the last step fails, as a full disk would.
    const blocker = join(identity(), `nats-authorization.conf.${process.pid}.tmp`);
    mkdirSync(blocker);
    const before = snapshot(identity());
    const r = run([...urlArgs('pi-02', imager), '--user-data-from', imager], { releasesDir: rel });
    expect(r.status).toBeInstanceOf(Error);
    expect((r.status as Error).message).toMatch(/EISDIR.*nothing was registered or written/);
    expect(readFileSync(imager, 'utf8')).toBe('#cloud-config\nhostname: pi\n');
    expect(snapshot(identity())).toEqual(before);
    expect(existsSync(enrollmentsDir(identity()))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('does not create the identity folder or the collector key when the first edge add fails', () => {
    const r = run(urlArgs('pi-02'), { releasesDir: join(dir, 'none') });
    expect(r.status).toBeInstanceOf(Error);
    expect(existsSync(identity())).toBe(false);
  });
});

describe('edge add --url warns about addresses a Pi cannot reach', () => {
  beforeEach(() => writeRelease(join(dir, 'rel'), '1.0.0'));
  const argsWith = (url: string, nats = 'nats://collector.lan:4222') =>
    urlArgs('gw-w').map((a) =>
      a === 'http://collector.lan:8080' ? url : a === 'nats://collector.lan:4222' ? nats : a,
    );

  it.each(['http://localhost:8080', 'http://127.0.0.1:8080', 'http://127.1.2.3:8080', 'http://[::1]:8080'])(
    '--url %s: warns on stderr, still succeeds',
    (url) => {
      const r = run(argsWith(url), { releasesDir: join(dir, 'rel'), httpHost: '0.0.0.0' });
      expect(r.status).toBe(0);
      expect(r.err).toMatch(/^warning: --url .* is a loopback address, which a Pi cannot reach/m);
      expect(r.out).toMatch(/edge gw-w registered/);
    },
  );

  it('warns when the collector listens on loopback only (FB_HTTP_HOST), and about a loopback NATS URL', () => {
    const r = run(argsWith('http://collector.lan:8080', 'nats://localhost:4222'), {
      releasesDir: join(dir, 'rel'),
      httpHost: '127.0.0.1',
    });
    expect(r.status).toBe(0);
    expect(r.err).toMatch(/warning: FB_HTTP_HOST is 127.0.0.1 \(loopback only\).*FB_HTTP_HOST=0\.0\.0\.0/);
    expect(r.err).toMatch(/warning: --nats nats:\/\/localhost:4222: localhost is a loopback address/);
  });

  it('says nothing for a LAN URL and a collector listening on all interfaces', () => {
    const r = run(argsWith('http://collector.lan:8080'), {
      releasesDir: join(dir, 'rel'),
      httpHost: '0.0.0.0',
    });
    expect(r.status).toBe(0);
    expect(r.err).toBe('');
  });
});
