#!/usr/bin/env bash
# Installs everything Fieldbeam needs on a Debian machine with Node >= 20.19 and npm, then builds it.
# Idempotent: what is already there is left alone. Run it again after pulling changes.
#   - Debian packages: nats-server, mosquitto, mosquitto-clients, iproute2 and nftables (the fault suite's
#     network namespaces and blackholes)
#   - pnpm 10 (through npm), the workspace dependencies (lock file), the TypeScript build
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number);console.log(a>20||(a===20&&b>=19)?1:0)' 2>/dev/null || echo 0)
if [ "$node_ok" != 1 ]; then
  echo "Fieldbeam needs Node.js >= 20.19 (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

missing=()
command -v nats-server >/dev/null || missing+=(nats-server)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null || missing+=(mosquitto-clients)
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

pnpm_major=$(pnpm --version 2>/dev/null | cut -d. -f1 || true)
if [ "${pnpm_major:-0}" -lt 10 ] 2>/dev/null; then
  step "installing pnpm 10 with npm"
  npm install -g --silent pnpm@10.34.9
fi

step "installing workspace dependencies"
pnpm install --frozen-lockfile

step "building"
pnpm build
echo "setup done: nats-server $(nats-server --version 2>&1 | head -1), pnpm $(pnpm --version), node $(node --version)"
