#!/usr/bin/env bash
# Builds the Raspberry Pi (linux-arm64) release of the edge agent on an x86-64 (or arm64) Debian host:
#   $FB_PI_OUT/fieldbeam-edge-<version>-linux-arm64.tar.zst   the bundle (Node + agent + production deps)
#   $FB_PI_OUT/fieldbeam-edge_<version>_arm64.deb             the same content as a Debian package
#   $FB_PI_OUT/SHA256SUMS, $FB_PI_OUT/release.json             checksums, and what the collector serves
# Settings: see deploy/pi/lib.sh (FB_PI_CACHE, FB_PI_NODE_VERSION, FB_PI_OUT, FB_PI_ZSTD_LEVEL).
# Needs: the workspace installed (pnpm install); Debian packages it installs itself when run as root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$FB_PI_ROOT"

# The .deb from the assembled bundle ($1): staged in $2, written to $3. FHS layout: the program (Node,
# the agent, its dependencies) in /usr/lib/fieldbeam-edge, the CLI in /usr/bin, the unit in
# /usr/lib/systemd/system, docs in /usr/share/doc/fieldbeam-edge. Same bytes for the same bundle:
# sorted lists, the times of SOURCE_DATE_EPOCH, root:root owners, xz (zstd members are refused by
# lintian and by dpkg before 1.21.18).
pi_build_deb() {
  local from=$1 root=$2 out=$3 lib=usr/lib/fieldbeam-edge doc=usr/share/doc/fieldbeam-edge kb
  local top
  top=$(sed -n '1s/^fieldbeam-edge (\([^)]*\)).*/\1/p' deploy/pi/debian/changelog)
  [ "$top" = "$version" ] ||
    pi_die "deploy/pi/debian/changelog starts with version '$top', edge/package.json says $version: add an entry for $version"
  rm -rf "$root"
  mkdir -p "$root/usr/lib" "$root/usr/bin" "$root/usr/lib/systemd/system" "$root/$doc" \
    "$root/usr/share/lintian/overrides" "$root/DEBIAN"
  cp -a "$from" "$root/$lib"
  # install.sh and its copies of the unit and the maintainer scripts serve the bundle only.
  rm -rf "$root/$lib/install.sh" "$root/$lib/share/maintainer" "$root/$lib/share/fieldbeam-edge.service"
  ln -s ../lib/fieldbeam-edge/bin/fieldbeam-edge "$root/usr/bin/fieldbeam-edge"
  install -m 0644 deploy/pi/systemd/fieldbeam-edge.service "$root/usr/lib/systemd/system/fieldbeam-edge.service"
  install -m 0644 deploy/pi/bundle/edge.yaml.example "$root/$doc/edge.yaml.example"
  install -m 0644 deploy/pi/debian/lintian-overrides "$root/usr/share/lintian/overrides/fieldbeam-edge"
  # A native package's changelog, compressed as policy 12.7 asks (gzip -9n: no name, no time inside).
  gzip -9n <deploy/pi/debian/changelog >"$root/$doc/changelog.gz"
  sed -e "s/@VERSION@/$version/g" -e "s/@NODE_VERSION@/$FB_PI_NODE_VERSION/g" deploy/pi/debian/copyright.in >"$root/$doc/copyright"
  chmod 0644 "$root/$doc/changelog.gz" "$root/$doc/copyright"
  # Apparent sizes: the same figure on any filesystem.
  kb=$(du -s --apparent-size --block-size=1024 "$root/usr" | cut -f1)
  sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$kb/" -e "s/@NODE_VERSION@/$FB_PI_NODE_VERSION/" \
    deploy/pi/debian/control.in >"$root/DEBIAN/control"
  install -m 0755 deploy/pi/debian/postinst deploy/pi/debian/prerm deploy/pi/debian/postrm "$root/DEBIAN/"
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's| \./| |' >DEBIAN/md5sums)
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group -Zxz "-z$FB_PI_DEB_XZ_LEVEL" --build "$root" "$out" >/dev/null
}

pi_time_start build-total
pi_lock
pi_need_packages "${FB_PI_BUILD_PACKAGES[@]}"

version=$(pi_version)
name="fieldbeam-edge-$version-linux-arm64"
stage=$(mktemp -d "${TMPDIR:-/tmp}/fb-pi-build.XXXXXX")
trap 'rm -rf "$stage"' EXIT

pi_time_start compile-ts
pnpm exec tsc -b edge
pi_time_end compile-ts

# Reproducible: every time in the bundle and the package is the last commit's (SOURCE_DATE_EPOCH).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- edge protocol 2>/dev/null || commit="$commit+dirty"
# Sorting (file lists, md5sums) must not depend on the caller's locale.
export LC_ALL=C

# Inputs of the release; an unchanged set reuses what is in $FB_PI_OUT (FB_PI_FORCE=1 rebuilds).
build_key=$(
  {
    find edge/dist protocol/dist -type f ! -name '*.map' ! -name '*.d.ts' -print0 | sort -z | xargs -0 sha256sum
    sha256sum edge/package.json protocol/package.json pnpm-lock.yaml deploy/pi/lib.sh deploy/pi/build.sh \
      deploy/pi/bundle/* deploy/pi/debian/* deploy/pi/systemd/*
    echo "$FB_PI_NODE_VERSION $FB_PI_ZSTD_LEVEL $FB_PI_DEB_XZ_LEVEL $commit $SOURCE_DATE_EPOCH"
  } | sha256sum | cut -c1-32
)
if [ "${FB_PI_FORCE:-0}" != 1 ] && [ "$(cat "$FB_PI_OUT/.build-key" 2>/dev/null)" = "$build_key" ] &&
  [ -f "$FB_PI_OUT/$name.tar.zst" ] && [ -f "$FB_PI_OUT/fieldbeam-edge_${version}_arm64.deb" ] &&
  (cd "$FB_PI_OUT" && sha256sum -c --quiet SHA256SUMS); then
  pi_log "release $version is up to date in $FB_PI_OUT (inputs unchanged; FB_PI_FORCE=1 rebuilds)"
  pi_time_end build-total
  exit 0
fi

pi_time_start node-arm64
node_dir=$(pi_fetch_node)
pi_time_end node-arm64

# Production dependencies of the edge package only (protocol injected as a copy, no collector deps).
# pnpm 10 deploys from the lockfile only with injected workspace packages; set here, the lockfile is untouched.
pi_time_start pnpm-deploy
bundle="$stage/$name"
mkdir -p "$bundle"
pnpm --filter @fieldbeam/edge deploy --prod --ignore-scripts --prefer-offline \
  --config.inject-workspace-packages=true "$bundle/app" >"$stage/deploy.log" 2>&1 ||
  { cat "$stage/deploy.log" >&2; pi_die "pnpm deploy failed"; }
pi_time_end pnpm-deploy

pi_time_start addon-arm64
bs3=$(readlink -f "$bundle/app/node_modules/better-sqlite3")
pi_better_sqlite3_addon "$bs3" "$node_dir"
pi_time_end addon-arm64

pi_time_start assemble
# Trim what does not run: sources, type declarations, maps, the addon's C sources, pnpm state, and the
# dependencies' tests, examples, benchmarks and docs (pi_prune_node_modules in lib.sh says which and why).
(
  cd "$bundle/app"
  rm -rf src tsconfig.json tsconfig.tsbuildinfo pnpm-lock.yaml node_modules/.pnpm-workspace-state*.json \
    node_modules/.bin node_modules/.modules.yaml node_modules/.pnpm/lock.yaml
  find dist -name '*.d.ts' -delete -o -name '*.map' -delete -o -name '*.test.js' -delete
  # The ISS replay server and its iss-replay command: a test and demo tool, not part of the agent.
  rm -rf dist/iss-replay
  # prebuilds/: better-sqlite3's own addons for other machines; the one built above (build/Release) is
  # the one it loads first.
  rm -rf "$bs3/deps" "$bs3/src" "$bs3/binding.gyp" "$bs3/prebuilds"
  find node_modules/.pnpm -maxdepth 1 -type d -name '@types+*' -exec rm -rf {} +
  pi_prune_node_modules node_modules
  # The checkout's path out (pnpm's `file:` links), and one copy per file (no hard links): lib.sh says why.
  pi_unlink_workspace_packages .
  pi_unshare_hard_links .
  # Nothing here is run directly: the agent runs through bin/fieldbeam-edge with the bundled Node, and the
  # addon is loaded, not executed. Executable bits would make the dependencies' CLI scripts (#!node) look
  # like programs of this package.
  chmod -R a-x+X,u+w,go-w .
)
grep -rqF -- "$FB_PI_ROOT" "$bundle/app" && pi_die "the checkout's path ($FB_PI_ROOT) is still in the bundle:
$(grep -rlF -- "$FB_PI_ROOT" "$bundle/app" | head)"
# Nothing built for another machine may ride along (an x86 addon would fail to load on the Pi).
foreign=$(find "$bundle/app" -type f -name '*.node' -exec file {} + | grep -v 'ARM aarch64' || true)
[ -z "$foreign" ] || pi_die "non-arm64 binaries in the bundle:\n$foreign"

mkdir -p "$bundle/node/bin" "$bundle/bin" "$bundle/share/maintainer"
install -m 0755 "$node_dir/bin/node" "$bundle/node/bin/node"
install -m 0644 "$node_dir/LICENSE" "$bundle/node/LICENSE"
install -m 0755 deploy/pi/bundle/fieldbeam-edge "$bundle/bin/fieldbeam-edge"
install -m 0755 deploy/pi/bundle/install.sh "$bundle/install.sh"
install -m 0644 deploy/pi/bundle/edge.yaml.example "$bundle/share/edge.yaml.example"
install -m 0644 deploy/pi/systemd/fieldbeam-edge.service "$bundle/share/fieldbeam-edge.service"
install -m 0755 deploy/pi/debian/postinst deploy/pi/debian/prerm deploy/pi/debian/postrm "$bundle/share/maintainer/"
echo "$version" >"$bundle/VERSION"
bs3_version=$(node -p "require('$bs3/package.json').version")
cat >"$bundle/BUILDINFO.json" <<EOF
{
  "name": "fieldbeam-edge",
  "version": "$version",
  "arch": "arm64",
  "commit": "$commit",
  "node": "$FB_PI_NODE_VERSION",
  "better_sqlite3": "$bs3_version",
  "glibc_min": "2.34"
}
EOF
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
pi_time_end assemble

pi_time_start bundle-tar-zst
mkdir -p "$FB_PI_OUT"
rm -f "$FB_PI_OUT"/fieldbeam-edge-*-linux-arm64.tar.zst "$FB_PI_OUT"/fieldbeam-edge_*_arm64.deb "$FB_PI_OUT/.build-key"
tarball="$FB_PI_OUT/$name.tar.zst"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" -C "$stage" -cf - "$name" |
  zstd -q -T0 "-$FB_PI_ZSTD_LEVEL" -o "$tarball"
pi_time_end bundle-tar-zst

pi_time_start deb
deb="$FB_PI_OUT/fieldbeam-edge_${version}_arm64.deb"
pi_build_deb "$bundle" "$stage/deb" "$deb"
pi_time_end deb

(cd "$FB_PI_OUT" && sha256sum "$(basename "$tarball")" "$(basename "$deb")" >SHA256SUMS)
echo "$build_key" >"$FB_PI_OUT/.build-key"
cat >"$FB_PI_OUT/release.json" <<EOF
{
  "version": "$version",
  "node": "$FB_PI_NODE_VERSION",
  "bundle": { "file": "$(basename "$tarball")", "sha256": "$(sha256sum "$tarball" | cut -d' ' -f1)", "bytes": $(stat -c %s "$tarball") },
  "deb": { "file": "$(basename "$deb")", "sha256": "$(sha256sum "$deb" | cut -d' ' -f1)", "bytes": $(stat -c %s "$deb") }
}
EOF
pi_time_end build-total
pi_log "bundle $(du -h "$tarball" | cut -f1) ($(du -sh "$bundle" | cut -f1) unpacked): $tarball"
pi_log "deb    $(du -h "$deb" | cut -f1): $deb"
