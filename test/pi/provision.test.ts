import { spawnSync } from 'node:child_process';
import {
  EDGE_RELEASES_PATH,
  PI_PATHS,
  type ProvisionOptions,
  releaseFileUrl,
  renderEdgeConfig,
  renderProvisioning,
  renderUserData,
} from '@fieldbeam/cloud';
// The edge's own schema: the rendered config must be one the agent accepts (a cross-package check,
// so it lives here and not in cloud/, which never imports the edge).
import { parseEdgeConfig } from '@fieldbeam/edge';
import { createUser } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const seed = new TextDecoder().decode(createUser().getSeed());
const sha = (c: string) => c.repeat(64);

function options(over: Partial<ProvisionOptions> = {}): ProvisionOptions {
  return {
    edgeId: 'gw-17',
    collectorUrl: 'https://collector.example.org',
    release: {
      version: '0.1.0',
      deb: { file: 'fieldbeam-edge_0.1.0_arm64.deb', sha256: sha('a') },
      bundle: { file: 'fieldbeam-edge-0.1.0-linux-arm64.tar.zst', sha256: sha('b') },
    },
    nats: { servers: ['tls://collector.example.org:4222'], nkeySeed: seed },
    mqtt: { users: [{ username: 'sensors', password: 'correct-horse' }] },
    sensors: [
      {
        topic: 'sensors/+station/temperature',
        decoder: { type: 'number', variable: 'air_temperature', unit: 'degC' },
      },
    ],
    ...over,
  };
}

interface WriteFile {
  path: string;
  permissions: string;
  owner: string;
  content: string;
}
interface CloudConfig {
  hostname?: string;
  write_files: WriteFile[];
  runcmd: string[][];
  [k: string]: unknown;
}

function cloudConfig(userData: string): CloudConfig {
  return parse(userData) as CloudConfig;
}
const fileAt = (c: CloudConfig, path: string) => c.write_files.find((f) => f.path === path);

describe('first-boot user-data', () => {
  it('is a #cloud-config document that writes the config, the seed and the script, then runs it', () => {
    const p = renderProvisioning(options({ hostname: 'gw-17' }));
    expect(p.userData.split('\n')[0]).toBe('#cloud-config');
    const c = cloudConfig(p.userData);
    expect(c.hostname).toBe('gw-17');
    expect(fileAt(c, PI_PATHS.config)?.content).toBe(p.edgeConfig);
    expect(fileAt(c, PI_PATHS.seed)).toMatchObject({ permissions: '0600', content: `${seed}\n` });
    expect(fileAt(c, PI_PATHS.firstBoot)).toMatchObject({ permissions: '0755', content: p.firstBootScript });
    expect(c.runcmd).toEqual([[PI_PATHS.firstBoot]]);
    expect(p.downloadUrl).toBe(
      `https://collector.example.org${EDGE_RELEASES_PATH}/fieldbeam-edge_0.1.0_arm64.deb`,
    );
  });

  it('renders an edge config the agent accepts, with the seed in its own file and MQTT open to sensors', () => {
    const text = renderEdgeConfig(options());
    expect(text).not.toContain(seed);
    const cfg = parseEdgeConfig(parse(text), {});
    expect(cfg.edge).toBe('gw-17');
    expect(cfg.data_dir).toBe('/var/lib/fieldbeam');
    expect(cfg.nats).toMatchObject({
      servers: ['tls://collector.example.org:4222'],
      nkey_seed_file: PI_PATHS.seed,
    });
    expect(cfg.mqtt.host).toBe('0.0.0.0');
    expect(cfg.mqtt.users[0]?.username).toBe('sensors');
    expect(cfg.sensors).toHaveLength(1);
  });

  it('keeps the broker on loopback without MQTT users, and lays extra config keys over the generated ones', () => {
    const text = renderEdgeConfig(
      options({
        mqtt: { port: 18830 },
        http: { port: 19464 },
        edgeConfig: { buffer: { policy: 'drop_oldest' } },
      }),
    );
    const cfg = parseEdgeConfig(parse(text), {});
    expect(cfg.mqtt.host).toBeUndefined();
    expect(cfg.mqtt.port).toBe(18830);
    expect(cfg.http.port).toBe(19464);
    expect(cfg.buffer.policy).toBe('drop_oldest');
  });

  it('writes a first-boot script that sh accepts and that pins the file by URL and SHA-256', () => {
    for (const kind of ['deb', 'bundle'] as const) {
      const p = renderProvisioning(options({ kind }));
      const syntax = spawnSync('sh', ['-n'], { input: p.firstBootScript });
      expect(syntax.status, syntax.stderr.toString()).toBe(0);
      const file =
        kind === 'deb' ? 'fieldbeam-edge_0.1.0_arm64.deb' : 'fieldbeam-edge-0.1.0-linux-arm64.tar.zst';
      expect(p.firstBootScript).toContain(`URL='https://collector.example.org/edge/releases/${file}'`);
      expect(p.firstBootScript).toContain(`SHA256='${sha(kind === 'deb' ? 'a' : 'b')}'`);
      expect(p.firstBootScript).toContain('sha256sum -c');
    }
  });

  it('quotes what it embeds in the script: a hostile URL path stays one literal word', () => {
    const url = "http://collector.lan/it's/$(reboot)/`id`";
    const p = renderProvisioning(options({ collectorUrl: url }));
    const line = p.firstBootScript.split('\n').find((l) => l.startsWith('URL='));
    const out = spawnSync('sh', ['-c', `${line}; printf %s "$URL"`]);
    expect(out.stdout.toString()).toBe(releaseFileUrl(url, 'fieldbeam-edge_0.1.0_arm64.deb'));
    expect(out.stdout.toString()).toContain("it's/$(reboot)/");
  });

  it('keeps a base path of the collector URL and drops a trailing slash', () => {
    expect(releaseFileUrl('https://example.org/fieldbeam/', 'x.deb')).toBe(
      'https://example.org/fieldbeam/edge/releases/x.deb',
    );
  });

  it('appends extra cloud-config lists (runcmd, write_files) and keeps other keys', () => {
    const c = cloudConfig(
      renderUserData(options({ cloudConfig: { timezone: 'Europe/Amsterdam', runcmd: [['echo', 'after']] } })),
    );
    expect(c.timezone).toBe('Europe/Amsterdam');
    expect(c.runcmd).toEqual([[PI_PATHS.firstBoot], ['echo', 'after']]);
  });

  it('refuses what would make a broken or unsafe Pi', () => {
    expect(() => renderUserData(options({ edgeId: 'gw.17' }))).toThrow(/edge id/);
    expect(() => renderUserData(options({ nats: { servers: ['nats://x:4222'], nkeySeed: 'nope' } }))).toThrow(
      /nkey/,
    );
    expect(() => renderUserData(options({ collectorUrl: 'ftp://x' }))).toThrow(/http/);
    expect(() => renderUserData(options({ collectorUrl: 'https://u:p@x' }))).toThrow(/credentials/);
    expect(() =>
      renderUserData(
        options({
          release: {
            version: '1',
            deb: { file: '../x.deb', sha256: sha('a') },
            bundle: { file: 'b', sha256: sha('b') },
          },
        }),
      ),
    ).toThrow(/file name/);
    expect(() =>
      renderUserData(
        options({
          release: {
            version: '1',
            deb: { file: 'x.deb', sha256: 'abc' },
            bundle: { file: 'b', sha256: sha('b') },
          },
        }),
      ),
    ).toThrow(/sha256/);
    expect(() =>
      renderUserData(options({ mqtt: { users: [{ username: 's', password: 'short' }] } })),
    ).toThrow(/8 characters/);
    expect(() =>
      renderUserData(options({ nats: { servers: ["nats://x:4222' ; reboot"], nkeySeed: seed } })),
    ).toThrow(/NATS server/);
  });
});
