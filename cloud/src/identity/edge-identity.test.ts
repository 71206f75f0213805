import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromSeed } from '@nats-io/nkeys';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  addEdge,
  authorizationIsCurrent,
  edgePermissions,
  listEdges,
  prepareEdge,
  removeEdge,
  rewriteAuthorization,
} from './edge-identity.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fb-id-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('edge identity', () => {
  it('issues a key pair whose public half lands in the server authorization with edge-only permissions', () => {
    const a = addEdge(dir, 'gw-1');
    expect(fromSeed(new TextEncoder().encode(a.seed)).getPublicKey()).toBe(a.publicKey);
    const conf = readFileSync(a.files.authorization, 'utf8');
    expect(conf).toContain(a.publicKey);
    expect(conf).toContain('"fb.obs.gw-1"');
    expect(conf).toContain('"fb.edge.gw-1.status"');
    expect(conf).toContain('"_INBOX.gw-1.>"');
    expect(conf).not.toContain('"_INBOX.>"');
    expect(conf).not.toContain(a.seed);
    expect(statSync(a.files.collectorSeed).mode & 0o777).toBe(0o600);
    expect(conf).toContain('allow_responses: { max: 1, expires: "1m" }');
    expect(edgePermissions('gw-1')).toEqual({
      // Its data and status; direct gets of its own and the fleet-wide key of the central sensor bucket (no consumer).
      publish: {
        allow: [
          'fb.obs.gw-1',
          'fb.edge.gw-1.status',
          '$JS.API.DIRECT.GET.KV_fb_sensors.$KV.fb_sensors.edge.gw-1',
          '$JS.API.DIRECT.GET.KV_fb_sensors.$KV.fb_sensors.all',
        ],
      },
      // Its inbox, its control service's endpoints and the $SRV discovery of its own service name.
      subscribe: {
        allow: [
          '_INBOX.gw-1.>',
          'fb.ctl.gw-1.>',
          '$SRV.PING',
          '$SRV.INFO',
          '$SRV.STATS',
          '$SRV.*.fieldbeam-edge-gw-1',
          '$SRV.*.fieldbeam-edge-gw-1.*',
        ],
      },
      allow_responses: { max: 1, expires: '1m' },
    });
  });

  it('refuses a second registration unless rotating, and keeps one record per edge', () => {
    const first = addEdge(dir, 'gw-1');
    expect(() => addEdge(dir, 'gw-1')).toThrow(/already registered/);
    const rotated = addEdge(dir, 'gw-1', { rotate: true });
    expect(rotated.publicKey).not.toBe(first.publicKey);
    addEdge(dir, 'gw-0');
    expect(listEdges(dir).map((e) => e.id)).toEqual(['gw-0', 'gw-1']);
    expect(readFileSync(rotated.files.authorization, 'utf8')).not.toContain(first.publicKey);
  });

  it('rejects ids that are not one subject token', () => {
    expect(() => addEdge(dir, 'gw.1')).toThrow(/must be 1-64/);
  });

  it("refuses the collector's name, whose inbox carries every edge's data", () => {
    expect(() => addEdge(dir, 'collector')).toThrow(/reserved/);
  });
});

describe('prepared registration', () => {
  it('writes nothing until committed, and refuses to commit over a registry another command changed', () => {
    const prepared = prepareEdge(dir, 'gw-1');
    expect(readdirSync(dir)).toEqual([]);
    addEdge(dir, 'gw-2');
    expect(() => prepared.commit()).toThrow(/changed while this command ran/);
    expect(listEdges(dir).map((e) => e.id)).toEqual(['gw-2']);
    const again = prepareEdge(dir, 'gw-1');
    again.commit();
    expect(listEdges(dir).map((e) => e.id)).toEqual(['gw-1', 'gw-2']);
    expect(readdirSync(dir).sort()).toEqual(['collector.nk', 'edges.json', 'nats-authorization.conf']);
  });
});

describe('authorization upkeep', () => {
  it('rewrites an authorization written by an older version, and says when nothing changed', () => {
    const a = addEdge(dir, 'gw-1');
    expect(authorizationIsCurrent(dir)).toBe(true);
    expect(rewriteAuthorization(dir).changed).toBe(false);
    // What an earlier version wrote: the edge without its control and central sensor permissions.
    const old = readFileSync(a.files.authorization, 'utf8').replace(/, "fb\.ctl\.gw-1\.>"/, '');
    writeFileSync(a.files.authorization, old);
    expect(authorizationIsCurrent(dir)).toBe(false);
    expect(rewriteAuthorization(dir)).toEqual({ file: a.files.authorization, changed: true });
    expect(readFileSync(a.files.authorization, 'utf8')).toContain('"fb.ctl.gw-1.>"');
    expect(authorizationIsCurrent(dir)).toBe(true);
  });

  it('refuses to write an authorization without the collector key', () => {
    expect(authorizationIsCurrent(dir)).toBe(true);
    expect(() => rewriteAuthorization(dir)).toThrow(/collector\.nk does not exist/);
  });

  it('removes an edge from the registry and the authorization, keeping the others', () => {
    const a = addEdge(dir, 'gw-1');
    const b = addEdge(dir, 'gw-2');
    expect(removeEdge(dir, 'gw-1')).toBe(true);
    expect(listEdges(dir).map((e) => e.id)).toEqual(['gw-2']);
    const conf = readFileSync(a.files.authorization, 'utf8');
    expect(conf).not.toContain(a.publicKey);
    expect(conf).not.toContain('fb.obs.gw-1"');
    expect(conf).toContain(b.publicKey);
    expect(removeEdge(dir, 'gw-1')).toBe(false);
    expect(authorizationIsCurrent(dir)).toBe(true);
  });
});
