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

# Inputs of the release; an unchanged set reuses what is in $FB_PI_OUT (FB_PI_FORCE=1 rebuilds).
build_key=$(
  {
    find edge/dist protocol/dist -type f ! -name '*.map' ! -name '*.d.ts' -print0 | sort -z | xargs -0 sha256sum
    sha256sum edge/package.json protocol/package.json pnpm-lock.yaml deploy/pi/lib.sh deploy/pi/build.sh \
      deploy/pi/bundle/* deploy/pi/debian/* deploy/pi/systemd/*
    echo "$FB_PI_NODE_VERSION $FB_PI_ZSTD_LEVEL"
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
# Trim what does not run: sources, type declarations, maps, the addon's C sources, pnpm state.
(
  cd "$bundle/app"
  rm -rf src tsconfig.json tsconfig.tsbuildinfo pnpm-lock.yaml node_modules/.pnpm-workspace-state*.json node_modules/.bin
  find dist -name '*.d.ts' -delete -o -name '*.map' -delete
  # prebuilds/: better-sqlite3's own addons for other machines; the one built above (build/Release) is
  # the one it loads first.
  rm -rf "$bs3/deps" "$bs3/src" "$bs3/binding.gyp" "$bs3/prebuilds"
  find node_modules/.pnpm -maxdepth 1 -type d -name '@types+*' -exec rm -rf {} +
  find node_modules -xtype l -delete
)
# Nothing built for another machine may ride along (an x86 addon would fail to load on the Pi).
foreign=$(find "$bundle/app" -type f \( -name '*.node' -o -perm -u+x \) -exec file {} + | grep ELF | grep -v 'ARM aarch64' || true)
[ -z "$foreign" ] || pi_die "non-arm64 binaries in the bundle:\n$foreign"

mkdir -p "$bundle/node/bin" "$bundle/bin" "$bundle/share/maintainer"
cp "$node_dir/bin/node" "$bundle/node/bin/node"
cp "$node_dir/LICENSE" "$bundle/node/LICENSE"
install -m 0755 deploy/pi/bundle/fieldbeam-edge "$bundle/bin/fieldbeam-edge"
install -m 0755 deploy/pi/bundle/install.sh "$bundle/install.sh"
install -m 0644 deploy/pi/bundle/edge.yaml.example "$bundle/share/edge.yaml.example"
install -m 0644 deploy/pi/systemd/fieldbeam-edge.service "$bundle/share/fieldbeam-edge.service"
install -m 0755 deploy/pi/debian/postinst deploy/pi/debian/prerm deploy/pi/debian/postrm "$bundle/share/maintainer/"
echo "$version" >"$bundle/VERSION"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- edge protocol 2>/dev/null || commit="$commit+dirty"
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
# Reproducible archive metadata: fixed owner and order, times from the last commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
pi_time_end assemble

pi_time_start bundle-tar-zst
mkdir -p "$FB_PI_OUT"
rm -f "$FB_PI_OUT"/fieldbeam-edge-*-linux-arm64.tar.zst "$FB_PI_OUT"/fieldbeam-edge_*_arm64.deb "$FB_PI_OUT/.build-key"
tarball="$FB_PI_OUT/$name.tar.zst"
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$stage" -cf - "$name" |
  zstd -q -T0 "-$FB_PI_ZSTD_LEVEL" -o "$tarball"
pi_time_end bundle-tar-zst

pi_time_start deb
root="$stage/deb"
mkdir -p "$root/opt/fieldbeam" "$root/usr/bin" "$root/usr/lib/systemd/system" "$root/usr/share/doc/fieldbeam-edge" "$root/DEBIAN"
cp -a "$bundle" "$root/opt/fieldbeam/edge"
rm "$root/opt/fieldbeam/edge/install.sh"
ln -s /opt/fieldbeam/edge/bin/fieldbeam-edge "$root/usr/bin/fieldbeam-edge"
install -m 0644 deploy/pi/systemd/fieldbeam-edge.service "$root/usr/lib/systemd/system/fieldbeam-edge.service"
install -m 0644 deploy/pi/bundle/edge.yaml.example "$root/usr/share/doc/fieldbeam-edge/edge.yaml.example"
printf 'Fieldbeam edge agent %s. Node.js %s: see /opt/fieldbeam/edge/node/LICENSE.\n' "$version" "$FB_PI_NODE_VERSION" \
  >"$root/usr/share/doc/fieldbeam-edge/copyright"
installed_kb=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$installed_kb/" -e "s/@NODE_VERSION@/$FB_PI_NODE_VERSION/" \
  deploy/pi/debian/control.in >"$root/DEBIAN/control"
install -m 0755 deploy/pi/debian/postinst deploy/pi/debian/prerm deploy/pi/debian/postrm "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's| \./| |' >DEBIAN/md5sums)
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
deb="$FB_PI_OUT/fieldbeam-edge_${version}_arm64.deb"
# zstd members need dpkg >= 1.21.18 (Debian / Raspberry Pi OS bookworm and later; bullseye cannot run the addon anyway).
dpkg-deb --root-owner-group -Zzstd "-z$FB_PI_ZSTD_LEVEL" --build "$root" "$deb" >/dev/null
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
