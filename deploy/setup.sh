#!/usr/bin/env bash
# Installs everything Fieldbeam needs on a Debian machine with Node >= 20.19 and npm, then builds it.
# Idempotent: what is already there is left alone. Run it again after pulling changes.
#   - Debian packages: nats-server, mosquitto, mosquitto-clients, iproute2 and nftables (the fault suite's
#     network namespaces and blackholes), systemd (systemd-notify) and python3 when missing
#   - pnpm 10 (through npm), the workspace dependencies (lock file), the TypeScript build
#   - with --pi also what the Raspberry Pi build and its emulation proof need (`pnpm test:pi`; the list
#     is in deploy/pi/lib.sh: the arm64 cross compiler, qemu-user-static, binfmt-support, debootstrap, ...)
# Debian packages: one apt-get update and one apt-get install, and only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

with_pi=0
for arg in "$@"; do
  case "$arg" in
    --pi) with_pi=1 ;;
    -h | --help)
      sed -n '2,9p' "$0"
      exit 0
      ;;
    *)
      echo "setup.sh: unknown argument $arg (known: --pi)" >&2
      exit 2
      ;;
  esac
done

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
# The agent's systemd notifications go through systemd-notify; its test binds the socket with python3.
command -v systemd-notify >/dev/null || [ -x /bin/systemd-notify ] || missing+=(systemd)
command -v python3 >/dev/null || missing+=(python3)
if [ "$with_pi" = 1 ]; then
  # shellcheck source=pi/lib.sh
  source deploy/pi/lib.sh
  for p in $(pi_missing_packages "${FB_PI_BUILD_PACKAGES[@]}" "${FB_PI_EMULATION_PACKAGES[@]}"); do
    [[ " ${missing[*]} " == *" $p "* ]] || missing+=("$p")
  done
fi
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
