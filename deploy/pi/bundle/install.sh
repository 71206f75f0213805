#!/bin/sh
# Installs this bundle without dpkg: the same files and maintainer steps as the fieldbeam-edge .deb.
#   sudo ./install.sh              install or upgrade into /usr/lib/fieldbeam-edge, enable the service
#   sudo ./install.sh --uninstall  stop and remove it (the config and the buffer stay)
# Prefer the .deb where dpkg is available: it is the same content, and apt knows about it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# The package's layout, so that the unit and the maintainer scripts are the same for both.
dest=/usr/lib/fieldbeam-edge
# Where earlier bundles installed; an upgrade from there removes it.
old_dest=/opt/fieldbeam/edge
unit=/etc/systemd/system/fieldbeam-edge.service

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
if command -v dpkg-query >/dev/null && dpkg-query -W -f='${Status}' fieldbeam-edge 2>/dev/null | grep -q 'ok installed'; then
  echo "install.sh: the fieldbeam-edge package is installed; upgrade it with its .deb instead" >&2
  exit 1
fi
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
case "$arch" in
  arm64 | aarch64) ;;
  *) echo "install.sh: this bundle needs a 64-bit arm (arm64) userland, found $arch" >&2; exit 1 ;;
esac

if [ "${1:-}" = --uninstall ]; then
  sh "$here/share/maintainer/prerm" remove
  rm -rf "$dest" "$old_dest" "$unit" /usr/local/bin/fieldbeam-edge
  rmdir /opt/fieldbeam 2>/dev/null || true
  sh "$here/share/maintainer/postrm" remove
  echo "fieldbeam-edge removed; /etc/fieldbeam and /var/lib/fieldbeam (the buffer) were kept"
  exit 0
fi

old=
[ -x "$dest/bin/fieldbeam-edge" ] && old=installed
[ -x "$old_dest/bin/fieldbeam-edge" ] && old=installed
[ -n "$old" ] && sh "$here/share/maintainer/prerm" upgrade
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.new"
cp -a "$here" "$dest.new"
rm -rf "$dest.old"
[ -d "$dest" ] && mv "$dest" "$dest.old"
mv "$dest.new" "$dest"
rm -rf "$dest.old" "$old_dest"
rmdir /opt/fieldbeam 2>/dev/null || true
install -m 0644 "$dest/share/fieldbeam-edge.service" "$unit"
ln -sf "$dest/bin/fieldbeam-edge" /usr/local/bin/fieldbeam-edge
# postinst's second argument is the previously configured version (empty on a first install).
sh "$dest/share/maintainer/postinst" configure ${old:+"$(cat "$dest/VERSION")"}
echo "fieldbeam-edge $(cat "$dest/VERSION") installed in $dest"
