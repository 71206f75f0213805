import { randomBytes } from 'node:crypto';
import { PI_PATHS } from './user-data.js';

/**
 * The script `GET /edge/install/<token>` answers, for `curl -fsSL <link> | sudo sh` on a Pi (or
 * cloud-init's runcmd): it writes the edge's config and seed, then the first-boot script
 * (renderFirstBootScript, the same download, checksum, install and start as before), and runs that.
 * The first-boot script stays on the Pi, so a failed download is retried with
 * `sudo /usr/local/sbin/fieldbeam-firstboot` (the link itself works once).
 *
 * Everything is inside one function called on the last line: sh reads a piped script as it arrives,
 * so a download cut short ends inside the function's body (a syntax error) or before the call, and
 * runs nothing; cut inside the call, the argument the function insists on is incomplete.
 */

export interface InstallScriptOptions {
  edgeId: string;
  /** /etc/fieldbeam/edge.yaml */
  config: string;
  /** The edge's nkey seed. */
  seed: string;
  /** renderFirstBootScript's output. */
  firstBootScript: string;
}

/** Single-quoted for sh. */
export function shq(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** `s` as one sh word: bare when it holds nothing sh treats specially, else single-quoted. */
export function shWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : shq(s);
}

/** A here-document delimiter that no line of `texts` equals. */
function delimiter(name: string, texts: string[]): string {
  for (;;) {
    const d = `FIELDBEAM_${name}_${randomBytes(6).toString('hex').toUpperCase()}`;
    if (!texts.some((t) => t.split('\n').includes(d))) return d;
  }
}

const withNewline = (s: string) => (s.endsWith('\n') ? s : `${s}\n`);

export function renderInstallScript(o: InstallScriptOptions): string {
  const config = withNewline(o.config);
  const seed = withNewline(o.seed.trim());
  const firstBoot = withNewline(o.firstBootScript);
  const end = delimiter('EOF', [config, seed, firstBoot]);
  return `#!/bin/sh
# Fieldbeam edge ${o.edgeId}: one-time install from the collector (curl -fsSL <link> | sudo sh).
# Writes ${PI_PATHS.config} and ${PI_PATHS.seed}, then ${PI_PATHS.firstBoot}, and runs it:
# download the agent's package, check its SHA-256, install it, start the service.
# The whole script is one function called on the last line: a download cut short runs nothing.

fieldbeam_install() {
  # A download cut inside the last line can still call the function: without its whole argument
  # it does nothing.
  if [ "\${1-}" != whole ]; then
    echo "fieldbeam-install: the script arrived incomplete; nothing was done (download it again)" >&2
    return 1
  fi
  set -eu
  say() { echo "fieldbeam-install: $*" >&2; }
  if [ "$(id -u)" != 0 ]; then
    say "run it as root: curl -fsSL <link> | sudo sh (the link works once: edge add ${o.edgeId} --rotate issues a new one)"
    return 1
  fi
  arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
  if [ "$arch" != arm64 ]; then
    say "the agent needs 64-bit Raspberry Pi OS (arm64); this system is $arch"
    return 1
  fi
  mkdir -p -m 0755 /usr/local/sbin
  mkdir -p -m 0755 /etc/fieldbeam
  umask 077
  # 0600 (root) until the package has created the fieldbeam group; the first-boot script then
  # gives the group read access.
  cat >${PI_PATHS.config}.new <<'${end}'
${config}${end}
  cat >${PI_PATHS.seed}.new <<'${end}'
${seed}${end}
  chmod 0600 ${PI_PATHS.config}.new ${PI_PATHS.seed}.new
  mv -f ${PI_PATHS.config}.new ${PI_PATHS.config}
  mv -f ${PI_PATHS.seed}.new ${PI_PATHS.seed}
  cat >${PI_PATHS.firstBoot}.new <<'${end}'
${firstBoot}${end}
  chmod 0755 ${PI_PATHS.firstBoot}.new
  mv -f ${PI_PATHS.firstBoot}.new ${PI_PATHS.firstBoot}
  say "wrote ${PI_PATHS.config}, ${PI_PATHS.seed} and ${PI_PATHS.firstBoot}"
  umask 022
  if ! ${PI_PATHS.firstBoot}; then
    say "the install did not finish; fix the cause above, then run: sudo ${PI_PATHS.firstBoot}"
    return 1
  fi
  say "edge ${o.edgeId} installed"
}

fieldbeam_install whole
`;
}
