import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { subjects } from '@fieldbeam/protocol';
import { type ConnectionOptions, nkeyAuthenticator } from '@nats-io/transport-node';
import type { CloudConfig } from '../config.js';
import { CloudError, CloudErrorCode } from '../errors.js';
import { COLLECTOR_IDENTITY, identityFiles } from '../identity/edge-identity.js';

/** Keepalive of the collector's NATS connection, as the edge's (see collectorConnectOptions). */
export const PING_INTERVAL_MS = 10_000;
export const MAX_PINGS_OUT = 3;

/** The identity folder: FB_IDENTITY_DIR, else `identity` in FB_DATA_DIR. */
export function identityDir(config: Pick<CloudConfig, 'FB_IDENTITY_DIR' | 'FB_DATA_DIR'>): string {
  return config.FB_IDENTITY_DIR ?? join(config.FB_DATA_DIR, 'identity');
}

type AuthConfig = Pick<
  CloudConfig,
  'NATS_USER' | 'NATS_PASS' | 'NATS_NKEY_SEED_FILE' | 'FB_IDENTITY_DIR' | 'FB_DATA_DIR'
>;

/**
 * The collector's seed file: NATS_NKEY_SEED_FILE; else, unless NATS_USER says to log in with a
 * password, `collector.nk` of the identity folder when it exists (a server without nkey
 * authorization needs none); else undefined.
 */
export function collectorSeedFile(config: AuthConfig): string | undefined {
  if (config.NATS_NKEY_SEED_FILE) return config.NATS_NKEY_SEED_FILE;
  if (config.NATS_USER) return undefined;
  const file = identityFiles(identityDir(config)).collectorSeed;
  return existsSync(file) ? file : undefined;
}

/**
 * How the collector authenticates and where its replies arrive: its own nkey (the identity folder's
 * `collector.nk`, whose public key `edge add` writes into nats-authorization.conf) or NATS_USER/PASS,
 * and its own inbox prefix, `_INBOX.collector`, which no edge may subscribe to.
 */
export function collectorConnectOptions(
  config: AuthConfig & Pick<CloudConfig, 'NATS_URL'>,
): ConnectionOptions {
  const seedFile = collectorSeedFile(config);
  let auth: Pick<ConnectionOptions, 'authenticator' | 'user' | 'pass'> = {};
  if (seedFile) {
    let seed: string;
    try {
      seed = readFileSync(seedFile, 'utf8').trim();
    } catch (err) {
      throw new CloudError(
        CloudErrorCode.CONFIG_INVALID,
        `cannot read the collector's NATS key ${seedFile}: ${(err as Error).message} ` +
          '(NATS_NKEY_SEED_FILE, or collector.nk in FB_IDENTITY_DIR; created by fieldbeam-cloud edge add, ' +
          "readable by the collector's user)",
        false,
        { cause: err },
      );
    }
    if (!/^SU[A-Z2-7]{56}$/.test(seed)) {
      throw new CloudError(
        CloudErrorCode.CONFIG_INVALID,
        `${seedFile} does not hold an nkey user seed (SU...): restore it, or remove it and run ` +
          'fieldbeam-cloud edge add --rotate for every edge to issue a new collector key',
        false,
      );
    }
    auth = { authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)) };
  } else if (config.NATS_USER) {
    auth = { user: config.NATS_USER, pass: config.NATS_PASS ?? '' };
  }
  return {
    // Several: the nodes of a cluster. The client picks one at random and fails over to the others.
    servers: config.NATS_URL.split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
    name: 'fieldbeam-cloud',
    inboxPrefix: subjects.inbox(COLLECTOR_IDENTITY),
    // A server that stops answering without closing the connection (a node cut off from the network)
    // is left after 3 unanswered pings, ~30 s, for another node of the cluster; the client's default
    // (2 min x 2) would stall ingest for minutes while the rest of the cluster serves.
    pingInterval: PING_INTERVAL_MS,
    maxPingOut: MAX_PINGS_OUT,
    ...auth,
  };
}

/**
 * NATS_URL for people to read: the servers with any credentials in them (`nats://user:pass@`,
 * `nats://token@`) replaced by `(redacted)`.
 */
export function displayNatsUrl(natsUrl: string): string {
  return natsUrl
    .split(',')
    .map((s) =>
      s
        .trim()
        .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_, scheme: string, user: string) =>
          user.includes(':')
            ? `${scheme}${user.slice(0, user.indexOf(':'))}:(redacted)@`
            : `${scheme}(redacted)@`,
        ),
    )
    .join(', ');
}

/**
 * A failed first connection explained. Refused by the server: which key the collector used and where
 * the server's authorization should come from. No server reached (refused, unknown host, timeout):
 * where the collector looked (NATS_URL, credentials redacted) and what to do.
 */
export function explainConnectError(
  err: unknown,
  config: AuthConfig & Pick<CloudConfig, 'NATS_URL'>,
): unknown {
  const message = (err as Error)?.message ?? String(err);
  if (!/authorization/i.test(message)) {
    return new CloudError(
      CloudErrorCode.NATS_UNREACHABLE,
      `cannot reach NATS at ${displayNatsUrl(config.NATS_URL)} (${message}): start nats-server with ` +
        'JetStream there (see deploy/README.md), or set NATS_URL to where it runs',
      true,
      { cause: err },
    );
  }
  const seedFile = collectorSeedFile(config);
  const used = seedFile
    ? `the collector's key ${seedFile}`
    : config.NATS_USER
      ? `NATS_USER ${config.NATS_USER}`
      : `no credentials (no ${identityFiles(identityDir(config)).collectorSeed}, NATS_NKEY_SEED_FILE and NATS_USER unset)`;
  return new CloudError(
    CloudErrorCode.CONFIG_INVALID,
    `NATS refused the collector (${message}) with ${used}: the server must include the ` +
      `nats-authorization.conf that fieldbeam-cloud edge add wrote beside that key ` +
      '(see deploy/README.md), reloaded after every edge add',
    false,
    { cause: err },
  );
}
