import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addEdge, collectorSeed } from '../identity/edge-identity.js';
import { collectorConnectOptions, collectorSeedFile, explainConnectError } from './connection.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-conn-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const base = () => ({ NATS_URL: 'nats://a:4222, nats://b:4222', FB_DATA_DIR: dir });

describe('collector NATS connection', () => {
  it('uses its own inbox prefix, and no credentials where there are none', () => {
    const o = collectorConnectOptions(base());
    expect(o).toEqual({
      servers: ['nats://a:4222', 'nats://b:4222'],
      name: 'fieldbeam-cloud',
      inboxPrefix: '_INBOX.collector',
      pingInterval: 10_000,
      maxPingOut: 3,
    });
  });

  it('takes the nodes of a cluster from NATS_URL, ignoring empty entries', () => {
    const o = collectorConnectOptions({
      ...base(),
      NATS_URL: 'nats://n1:4222,nats://n2:4222, nats://n3:4222,',
    });
    expect(o.servers).toEqual(['nats://n1:4222', 'nats://n2:4222', 'nats://n3:4222']);
  });

  it('authenticates with collector.nk of the identity folder once edge add made it', () => {
    const idDir = join(dir, 'ids');
    addEdge(idDir, 'gw-1');
    expect(collectorSeedFile({ ...base(), FB_IDENTITY_DIR: idDir })).toBe(join(idDir, 'collector.nk'));
    expect(collectorConnectOptions({ ...base(), FB_IDENTITY_DIR: idDir }).authenticator).toBeTypeOf(
      'function',
    );
    // The default folder is `identity` in FB_DATA_DIR.
    collectorSeed(join(dir, 'identity'));
    expect(collectorSeedFile(base())).toBe(join(dir, 'identity', 'collector.nk'));
  });

  it('lets explicit settings win over the default key file', () => {
    collectorSeed(join(dir, 'identity'));
    const withUser = collectorConnectOptions({ ...base(), NATS_USER: 'u', NATS_PASS: 'p' });
    expect(withUser.user).toBe('u');
    expect(withUser.authenticator).toBeUndefined();
    const other = join(dir, 'other.nk');
    writeFileSync(other, `${collectorSeed(join(dir, 'elsewhere'))}\n`);
    expect(collectorSeedFile({ ...base(), NATS_USER: 'u', NATS_NKEY_SEED_FILE: other })).toBe(other);
  });

  it('names the file and the fix when the key is missing or not a seed', () => {
    expect(() => collectorConnectOptions({ ...base(), NATS_NKEY_SEED_FILE: join(dir, 'nope.nk') })).toThrow(
      /cannot read the collector's NATS key .*nope\.nk.*edge add/,
    );
    writeFileSync(join(dir, 'bad.nk'), 'hello\n');
    expect(() => collectorConnectOptions({ ...base(), NATS_NKEY_SEED_FILE: join(dir, 'bad.nk') })).toThrow(
      /does not hold an nkey user seed/,
    );
  });

  it('explains a refused connection with the key it used', () => {
    const err = explainConnectError(new Error('Authorization Violation'), base()) as Error;
    expect(err.message).toMatch(/no credentials .*collector\.nk.*nats-authorization\.conf/);
  });

  it('names where it looked, credentials redacted, when no server answers', () => {
    const refused = new Error('connection refused');
    const err = explainConnectError(refused, {
      ...base(),
      NATS_URL: 'nats://fb:s3cret@a:4222,nats://t0ken@b:4222',
    }) as Error & { code: string; cause: unknown };
    expect(err.message).toBe(
      'cannot reach NATS at nats://fb:(redacted)@a:4222, nats://(redacted)@b:4222 (connection refused): ' +
        'start nats-server with JetStream there (see deploy/README.md), or set NATS_URL to where it runs',
    );
    expect(err.code).toBe('FB_CLOUD_NATS_UNREACHABLE');
    expect(err.cause).toBe(refused);
  });
});
