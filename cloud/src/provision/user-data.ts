import { isSubjectToken } from '@fieldbeam/protocol';
import { stringify } from 'yaml';

/**
 * First-boot provisioning of a Raspberry Pi edge: the cloud-init `user-data` that Raspberry Pi OS
 * reads from the boot partition. On first boot it downloads the agent's .deb (or bundle) from the
 * collector, checks its SHA-256, installs it, writes the edge's config and NATS seed, and starts the
 * service. Pure functions: nothing here touches the disk or the network.
 */

/** Where the collector serves the release files (`release.json`, the .deb, the bundle) over HTTP. */
export const EDGE_RELEASES_PATH = '/edge/releases';

/** Paths on the Pi (as installed by the fieldbeam-edge package). */
export const PI_PATHS = {
  config: '/etc/fieldbeam/edge.yaml',
  seed: '/etc/fieldbeam/edge.nk',
  firstBoot: '/usr/local/sbin/fieldbeam-firstboot',
  dataDir: '/var/lib/fieldbeam',
  cli: '/usr/lib/fieldbeam-edge/bin/fieldbeam-edge',
} as const;

/** One file of a release, as listed in `release.json` (written by deploy/pi/build.sh). */
export interface ReleaseFile {
  file: string;
  sha256: string;
}

/** `release.json` beside the files. */
export interface EdgeRelease {
  version: string;
  node?: string;
  deb: ReleaseFile;
  bundle: ReleaseFile;
}

export interface MqttUserSpec {
  username: string;
  password: string;
  publish?: string[];
  subscribe?: string[];
}

export interface ProvisionOptions {
  /** The edge's id (one NATS subject token), as registered by `fieldbeam-cloud edge add`. */
  edgeId: string;
  /** The collector's base URL as the Pi reaches it (`edge add --url`); it serves EDGE_RELEASES_PATH. */
  collectorUrl: string;
  /** Install the Debian package (default) or the bundle (tar.zst + its install.sh). */
  kind?: 'deb' | 'bundle';
  release: EdgeRelease;
  /** The edge's NATS servers and its nkey seed (issued by `edge add`). */
  nats: { servers: string[]; nkeySeed: string };
  /**
   * The embedded MQTT broker. With users it listens on all interfaces (sensors on the network
   * connect to `<hostname>.local:<port>`); without, on loopback only.
   */
  mqtt?: { host?: string; port?: number; users?: MqttUserSpec[] };
  http?: { host?: string; port?: number };
  /** The edge config's `sensors` list (see edge/README.md). */
  sensors?: unknown[];
  /** MQTT filters whose unmatched topics the agent turns into sensors (`auto_register`); none: off. */
  autoRegisterTopics?: readonly string[];
  /** More edge config keys (buffer, clock, iss, ...), laid over the generated ones. */
  edgeConfig?: Record<string, unknown>;
  /** The Pi's hostname (cloud-init `hostname`); Raspberry Pi Imager usually sets it already. */
  hostname?: string;
  /** More cloud-config keys (users, ssh_authorized_keys, timezone, ...); list keys are appended. */
  cloudConfig?: Record<string, unknown>;
  /** Seconds the first-boot script waits for NTP before an https download (a Pi has no RTC). */
  clockWaitSeconds?: number;
}

export interface Provisioning {
  /** The `user-data` file for the boot partition (`#cloud-config`). */
  userData: string;
  /** /etc/fieldbeam/edge.yaml */
  edgeConfig: string;
  /** /usr/local/sbin/fieldbeam-firstboot */
  firstBootScript: string;
  /** What the Pi downloads. */
  downloadUrl: string;
}

export const SAFE_FILE = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;
export const SHA256 = /^[0-9a-f]{64}$/;
const NKEY_SEED = /^SU[A-Z2-7]{56}$/;

function problem(message: string): never {
  throw new Error(`provisioning: ${message}`);
}

function baseUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return problem(`collector URL "${url}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    problem(`collector URL "${url}" must be http:// or https://`);
  if (u.search || u.hash) problem(`collector URL "${url}" must not have a query or fragment`);
  if (u.username || u.password) problem('collector URL must not carry credentials');
  return u;
}

/** The URL a release file is served at. */
export function releaseFileUrl(collectorUrl: string, file: string): string {
  if (!SAFE_FILE.test(file))
    problem(`release file name "${file}" has characters outside A-Z a-z 0-9 . _ + ~ -`);
  const u = baseUrl(collectorUrl);
  const path = u.pathname.replace(/\/+$/, '');
  return `${u.origin}${path}${EDGE_RELEASES_PATH}/${file}`;
}

function validate(o: ProvisionOptions): void {
  if (!isSubjectToken(o.edgeId)) problem(`edge id "${o.edgeId}" must be 1-64 of A-Z a-z 0-9 _ -`);
  if (!NKEY_SEED.test(o.nats.nkeySeed)) problem('nats.nkeySeed is not an nkey user seed (SU...)');
  if (o.nats.servers.length === 0) problem('nats.servers is empty');
  for (const s of o.nats.servers) {
    if (!/^(nats|tls):\/\/[^\s'"]+$/.test(s))
      problem(`NATS server "${s}" must be nats://host:port or tls://host:port`);
  }
  const f = o.release[o.kind ?? 'deb'];
  if (!f) problem(`release has no ${o.kind ?? 'deb'} file`);
  if (!SHA256.test(f.sha256)) problem(`release ${f.file}: sha256 must be 64 lowercase hex digits`);
  for (const u of o.mqtt?.users ?? []) {
    if (u.password.length < 8) problem(`mqtt user ${u.username}: use a password of at least 8 characters`);
  }
  if (o.hostname !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(o.hostname))
    problem(`hostname "${o.hostname}" is not a valid host name`);
}

/** The edge agent's config file for this edge (the seed stays in its own file, PI_PATHS.seed). */
export function renderEdgeConfig(o: ProvisionOptions): string {
  validate(o);
  const users = o.mqtt?.users ?? [];
  const mqtt: Record<string, unknown> = {};
  const mqttHost = o.mqtt?.host ?? (users.length > 0 ? '0.0.0.0' : undefined);
  if (mqttHost !== undefined) mqtt.host = mqttHost;
  if (o.mqtt?.port !== undefined) mqtt.port = o.mqtt.port;
  if (users.length > 0) {
    mqtt.users = users.map((u) => ({
      username: u.username,
      password: u.password,
      ...(u.publish ? { publish: u.publish } : {}),
      ...(u.subscribe ? { subscribe: u.subscribe } : {}),
    }));
  }
  const doc: Record<string, unknown> = {
    edge: o.edgeId,
    data_dir: PI_PATHS.dataDir,
    nats: { servers: [...o.nats.servers], nkey_seed_file: PI_PATHS.seed },
    ...(Object.keys(mqtt).length > 0 ? { mqtt } : {}),
    ...(o.http ? { http: { ...o.http } } : {}),
    sensors: o.sensors ?? [],
    ...(o.autoRegisterTopics?.length
      ? { auto_register: { enabled: true, topics: [...o.autoRegisterTopics] } }
      : {}),
    ...o.edgeConfig,
  };
  return `# Fieldbeam edge agent config for ${o.edgeId}, written at first boot (fieldbeam-cloud edge add).
# Keys: /usr/lib/fieldbeam-edge/app/README.md. After a change: systemctl reload fieldbeam-edge (sensors)
# or systemctl restart fieldbeam-edge (everything else).
${stringify(doc, { lineWidth: 0 })}`;
}

/** Single-quoted for sh: every value the script embeds goes through this. */
function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The script cloud-init runs once (runcmd): download, verify, install, start. POSIX sh, as root. */
export function renderFirstBootScript(o: ProvisionOptions): string {
  validate(o);
  const kind = o.kind ?? 'deb';
  const f = o.release[kind];
  const url = releaseFileUrl(o.collectorUrl, f.file);
  const wait = o.clockWaitSeconds ?? 180;
  return `#!/bin/sh
# Fieldbeam first boot for edge ${o.edgeId}: install the edge agent from the collector and start it.
# Written by the collector's install link (or cloud-init). Safe to run again: sudo ${PI_PATHS.firstBoot}
set -eu
URL=${shq(url)}
FILE=${shq(f.file)}
SHA256=${shq(f.sha256)}
KIND=${shq(kind)}
CONF=${shq(PI_PATHS.config)}
SEED=${shq(PI_PATHS.seed)}
CLOCK_WAIT=${wait}

log() { echo "fieldbeam-firstboot: $*"; }

arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
if [ "$arch" != arm64 ]; then
  log "the agent needs 64-bit Raspberry Pi OS (arm64); this system is $arch"
  exit 1
fi

# A Pi has no real-time clock: until NTP answers, the time may be months behind and TLS refuses
# every certificate. Wait for synchronisation (when timedatectl can tell) before an https download.
case "$URL" in
  https:*)
    if command -v timedatectl >/dev/null 2>&1 && timedatectl show >/dev/null 2>&1; then
      i=0
      while [ "$(timedatectl show -p NTPSynchronized --value 2>/dev/null)" != yes ] && [ "$i" -lt "$CLOCK_WAIT" ]; do
        sleep 2
        i=$((i + 2))
      done
      [ "$i" -lt "$CLOCK_WAIT" ] || log "clock still not synchronised after $CLOCK_WAIT s; trying anyway"
    fi
    ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log "downloading $URL"
curl --fail --silent --show-error --location --connect-timeout 10 \\
  --retry 30 --retry-delay 5 --retry-all-errors -o "$tmp/$FILE" "$URL"
echo "$SHA256  $tmp/$FILE" | sha256sum -c --quiet -
log "checksum ok"

export DEBIAN_FRONTEND=noninteractive
if [ "$KIND" = deb ]; then
  apt-get install -y --no-install-recommends "$tmp/$FILE" || dpkg -i "$tmp/$FILE"
else
  command -v zstd >/dev/null || apt-get install -y --no-install-recommends zstd
  mkdir "$tmp/bundle"
  zstd -dc "$tmp/$FILE" | tar -x -C "$tmp/bundle"
  "$tmp"/bundle/*/install.sh
fi

# cloud-init wrote the config before the package created the fieldbeam user. The folder stays as the
# package made it (root:root 0755, what the collector's package makes too); the files keep their own modes.
chgrp fieldbeam "$CONF"
chmod 0640 "$CONF"
if [ -f "$SEED" ]; then
  chgrp fieldbeam "$SEED"
  chmod 0640 "$SEED"
fi
${PI_PATHS.cli} check --config "$CONF" >/dev/null
log "config ok"

if [ -d /run/systemd/system ]; then
  # restart, not start: an agent already running (installed before, now given a new identity by
  # the install link) must read the new config and seed.
  systemctl enable fieldbeam-edge.service
  systemctl restart fieldbeam-edge.service
  log "service started: journalctl -u fieldbeam-edge"
else
  systemctl enable fieldbeam-edge.service 2>/dev/null || true
  log "systemd is not running here: the service starts at the next boot"
fi
`;
}

function mergeCloudConfig(base: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(extra)) {
    const cur = out[k];
    out[k] = Array.isArray(cur) && Array.isArray(v) ? [...cur, ...v] : v;
  }
  return out;
}

/** Everything for one edge: the user-data and, for inspection, the files it writes. */
export function renderProvisioning(o: ProvisionOptions): Provisioning {
  const edgeConfig = renderEdgeConfig(o);
  const firstBootScript = renderFirstBootScript(o);
  const kind = o.kind ?? 'deb';
  const doc = mergeCloudConfig(
    {
      ...(o.hostname ? { hostname: o.hostname } : {}),
      write_files: [
        { path: PI_PATHS.config, permissions: '0640', owner: 'root:root', content: edgeConfig },
        { path: PI_PATHS.seed, permissions: '0600', owner: 'root:root', content: `${o.nats.nkeySeed}\n` },
        { path: PI_PATHS.firstBoot, permissions: '0755', owner: 'root:root', content: firstBootScript },
      ],
      runcmd: [[PI_PATHS.firstBoot]],
    },
    o.cloudConfig,
  );
  const userData = `#cloud-config
# Fieldbeam edge ${o.edgeId}: on first boot, installs the edge agent ${o.release.version} (${kind}) from
# ${baseUrl(o.collectorUrl).origin} and starts it. Holds the edge's NATS key: keep this file private.
${stringify(doc, { lineWidth: 0, blockQuote: 'literal' })}`;
  return {
    userData,
    edgeConfig,
    firstBootScript,
    downloadUrl: releaseFileUrl(o.collectorUrl, o.release[kind].file),
  };
}

/** The `user-data` file alone. */
export function renderUserData(o: ProvisionOptions): string {
  return renderProvisioning(o).userData;
}
