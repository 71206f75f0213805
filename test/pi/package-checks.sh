# shellcheck shell=bash
# Checks of the .deb itself, for test/pi/emulation.sh (source it after test/pi/proof-lib.sh; it uses its
# check, $work, $logs and the release pi_proof_build found):
#   pi_proof_package      a second build gives the same bytes; no checkout or build-folder path inside;
#                         no tests, examples or benchmarks of dependencies; lintian without errors, and
#                         without warnings beyond deploy/pi/debian/lintian-overrides (each with its reason)
#   pi_old_layout_deb     the package as earlier releases laid it out (/opt/fieldbeam/edge), for the
#                         upgrade check

pi_proof_package() {
  pi_time_start package-checks
  local deb="$FB_PI_OUT/$deb_file" again="$work/rebuild" x="$work/deb-x" nm
  # Same commit, same bytes: build again (forced, into another folder) and compare.
  if FB_PI_FORCE=1 FB_PI_OUT="$again" bash deploy/pi/build.sh >"$logs/rebuild.log" 2>&1; then
    # Same inputs or no comparison: a commit made in this checkout between the two builds changes every
    # file's time (SOURCE_DATE_EPOCH), and uncommitted changes to edge/ or protocol/ the compiled agent.
    [ "$(pi_checkout_state)" = "$PI_BUILD_STATE" ] ||
      pi_log "the checkout changed during the two builds (a commit, or edge/ or protocol/ edited): they cannot match"
    check "reproducible: a second build gives the same .deb (sha256 $(sha256sum "$deb" | cut -c1-12))" \
      cmp -s "$deb" "$again/$deb_file"
    check "reproducible: a second build gives the same bundle (tar.zst)" \
      cmp -s "$FB_PI_OUT/$bundle_file" "$again/$bundle_file"
  else
    tail -20 "$logs/rebuild.log" >&2
    FAILED+=("second build for the reproducibility check (log: rebuild.log)")
  fi
  rm -rf "$again"

  dpkg-deb -x "$deb" "$x"
  # The Node binary is upstream's, byte for byte (nothing of this build is in it), and long enough for a
  # short checkout path to occur inside by chance: left out of the search.
  check "no checkout or build-folder path inside the package" \
    bash -c "! grep -rlaF -e '$FB_PI_ROOT' -e /fb-pi-build. --exclude=node '$x' >'$logs/paths-in-package.log'"
  nm="$x/usr/lib/fieldbeam-edge/app/node_modules"
  check "no tests, examples, benchmarks or docs of dependencies in the package" \
    bash -c "! find '$nm' -type d \\( -name test -o -name tests -o -name example -o -name examples -o -name 'bench*' \\
      -o -name docs -o -name .github \\) | grep -q ."
  # The ISS replay server (edge/src/iss-replay) is a test and demo tool: build.sh leaves it out.
  check "no ISS replay server (iss-replay, tlcp-replay-server) in the package" \
    bash -c "! find '$x' \\( -name iss-replay -o -name 'tlcp-replay-server*' -o -name 'replay-command*' \\) | grep -q ."
  PACKAGE_FILES=$(find "$x" -type f | wc -l)
  PACKAGE_INSTALLED_KB=$(dpkg-deb -f "$deb" Installed-Size)
  rm -rf "$x"

  lintian --fail-on none "$deb" >"$logs/lintian.log" 2>&1 || true
  check "lintian: no errors" bash -c "! grep -q '^E: ' '$logs/lintian.log'"
  check "lintian: no warnings beyond the explained overrides" bash -c "! grep -q '^W: ' '$logs/lintian.log'"
  grep -E '^[EW]: ' "$logs/lintian.log" >&2 || true
  pi_time_end package-checks
}

# $1: this release's .deb, $2: where to write the same content laid out as releases before the move to
# /usr/lib were: the program in /opt/fieldbeam/edge, /usr/bin/fieldbeam-edge and the unit pointing there,
# and their postinst (this one with that path; the other maintainer scripts did not change).
pi_old_layout_deb() {
  local t="$work/old-layout"
  rm -rf "$t"
  dpkg-deb -R "$1" "$t"
  mkdir -p "$t/opt/fieldbeam"
  mv "$t/usr/lib/fieldbeam-edge" "$t/opt/fieldbeam/edge"
  ln -sfn /opt/fieldbeam/edge/bin/fieldbeam-edge "$t/usr/bin/fieldbeam-edge"
  sed -i 's|/usr/lib/fieldbeam-edge/|/opt/fieldbeam/edge/|g' "$t/usr/lib/systemd/system/fieldbeam-edge.service" "$t/DEBIAN/postinst"
  rm -rf "$t/usr/share/lintian"
  (cd "$t" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's| \./| |' >DEBIAN/md5sums)
  dpkg-deb --root-owner-group -Znone --build "$t" "$2" >/dev/null
  rm -rf "$t"
}
