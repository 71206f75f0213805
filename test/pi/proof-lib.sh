# shellcheck shell=bash disable=SC2034
# The emulated Raspberry Pi of test/pi/emulation.sh (the proof) and test/pi/bench.sh (`pnpm bench pi`):
# sets it up on this x86-64 host and takes it down again. Source it; it defines functions and settings only.
#
#   pi_proof_begin          root, one run at a time (lock), the work folder, cleanup at exit
#   pi_proof_host           Debian packages, binfmt (what it changes is undone at exit), TypeScript build
#   pi_proof_build          deploy/pi/build.sh (FB_PI_SKIP_BUILD=1 reuses deploy/pi/dist)
#   pi_proof_network        the LAN: a network namespace for the sensors' device, joined to this host by a
#                           veth pair (HOST_ADDR here, DEVICE_ADDR there); device CMD... runs a command there
#   pi_proof_services       the collector as deploy/README.md runs it: the release in FB_RELEASES_DIR, the
#                           identity folder beside nats-server.conf (deploy/nats), the first `fieldbeam-cloud
#                           edge add`, nats-server, `fieldbeam-cloud run` (embedded Postgres) on HOST_ADDR
#   pi_edge_add ID ARGS...  `fieldbeam-cloud edge add ID --url --nats ARGS...` as deploy/pi/README.md writes
#                           it, then nats-server reloaded by its pid file; sets ADD_OUT, MQTT_USER, MQTT_PASS,
#                           INSTALL_CMD, INSTALL_URL (what the command printed)
#   pi_proof_rootfs [NAME [SUITE INCLUDE]]  a fresh copy of the cached arm64 rootfs in $work/rootfs-NAME
#                           (root=...), /proc and /dev mounted; pi_proof_rootfs_done removes it again
#   pi_proof_collector_ready
#   pi_proof_first_boot     the user-data applied to the rootfs as cloud-init would (pi-helper apply-user-data)
#   pi_proof_unit           the installed unit's User=, Environment=, ExecStart=, its state folders
#   start_agent LOG, stop_agent, start_nats
#
# At exit (trap): every process started here is stopped by its pid (TERM, then KILL); anything still
# running in a rootfs, in the device's network namespace or with the work folder in its command line (the
# collector's Postgres, say) is found by /proc and stopped by pid too; the rootfs mounts are removed, the
# network namespace and its veth pair deleted; binfmt_misc is put back as found;
# the logs are copied to $FB_PI_OUT/<name>-logs and the work folder is deleted. The caller may define
# pi_proof_report RC (prints its summary, returns the exit status).
#
# Settings (besides deploy/pi/lib.sh): FB_PI_KEEP=1 keeps the work folder, FB_PI_QEMU_CPU (default
# cortex-a72, a Pi 4), FB_PI_SKIP_BUILD=1, FB_PI_KEEP_BINFMT=1 leaves binfmt_misc set up.

EDGE_ID=${EDGE_ID:-pi-proof}
QEMU_CPU_MODEL=${FB_PI_QEMU_CPU:-cortex-a72}
HELPER=(node "$FB_PI_ROOT/node_modules/tsx/dist/cli.mjs" "$FB_PI_ROOT/test/pi/pi-helper.ts")

declare -ga PASSED=() FAILED=() PIDS=() EDGE_ADD_ARGS=()
check() { # check NAME COMMAND...: runs it, records pass or fail
  local name=$1
  shift
  if "$@"; then
    PASSED+=("$name")
    pi_log "ok: $name"
  else
    FAILED+=("$name")
    pi_log "FAILED: $name"
  fi
}
fail_now() {
  FAILED+=("$1")
  pi_log "FAILED: $1"
  exit 1
}
pgc() { "${HELPER[@]}" pg-count "$@" >>"$logs/pg-count.jsonl"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------------------------------
pi_proof_begin() { # NAME: logs go to $FB_PI_OUT/NAME-logs
  FB_PI_RUN_NAME=$1
  [ "$(id -u)" = 0 ] || pi_die "run as root (chroot, mounts, binfmt_misc)"
  pi_lock
  pi_time_start total
  work=$(mktemp -d /var/tmp/fb-pi-proof.XXXXXX)
  chmod 0755 "$work" # the embedded Postgres runs as an unprivileged user
  root="$work/rootfs"
  logs="$work/logs"
  mkdir -p "$logs"
  trap pi_proof_cleanup EXIT
  trap 'exit 130' INT TERM HUP
}

# Background children close fd 9 (the lock, deploy/pi/lib.sh) and fd 8 (test/pi/bench.sh's report channel).

# Pids of processes still running in the rootfs or with the work folder in their command line, and their
# descendants (builtins only, so that the scan itself does not show up).
pi_proof_strays() {
  local d p args r line roots=()
  local -A parent=() hit=()
  for r in "$work"/rootfs*/ "$work"/fb-pi-debootstrap.*/rootfs/; do [ -d "$r" ] && roots+=("$r"); done
  # Whatever runs in the device's network namespace (a mosquitto_pub that hangs, say).
  if [ -n "${DEVICE_NS:-}" ] && [ -e "/run/netns/$DEVICE_NS" ]; then
    for p in $(ip netns pids "$DEVICE_NS" 2>/dev/null); do hit[$p]=1; done
  fi
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = "$$" ] || [ "$p" = "$BASHPID" ] && continue
    read -r line 2>/dev/null <"$d/stat" || continue
    line=${line##*) }   # after "pid (comm) ": state ppid ...
    line=${line#* }
    parent[$p]=${line%% *}
    for r in "${roots[@]}"; do
      if [ "$d/root/" -ef "$r" ]; then
        hit[$p]=1
        continue 2
      fi
    done
    mapfile -d '' args 2>/dev/null <"$d/cmdline" || continue
    case "${args[*]}" in *"$work"*) hit[$p]=1 ;; esac
  done
  local grew=1
  while [ "$grew" = 1 ]; do
    grew=0
    for p in "${!parent[@]}"; do
      if [ -z "${hit[$p]:-}" ] && [ -n "${hit[${parent[$p]}]:-}" ]; then
        hit[$p]=1
        grew=1
      fi
    done
  done
  for p in "${!hit[@]}"; do echo "$p"; done
}

# Stops pids: TERM, up to $1 seconds each, then KILL. Sets STOPPED_N (how many were running). Runs in
# this shell, not a subshell, so that bash reaps its own children and an exited one stops counting.
pi_proof_stop_pids() {
  local grace=$1 pid i
  shift
  STOPPED_N=0
  for pid in "$@"; do kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null && STOPPED_N=$((STOPPED_N + 1)); done
  for pid in "$@"; do
    for ((i = 0; i < grace * 5; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  return 0
}

pi_proof_cleanup() {
  local rc=$? cpu i pid stopped strays=() left=() binfmt problems=()
  set +e
  trap - INT TERM HUP
  pi_time_start cleanup
  times >"$work/times.txt"
  cpu=$(tail -1 "$work/times.txt")
  # Newest first: the agent, then the collector (it stops its Postgres), then nats-server.
  local rev=()
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do rev+=("${PIDS[i]}"); done
  pi_proof_stop_pids 20 "${rev[@]}"
  stopped=$STOPPED_N
  mapfile -t strays < <(pi_proof_strays)
  if [ ${#strays[@]} -gt 0 ]; then
    pi_log "stopping ${#strays[@]} leftover process(es) by pid: ${strays[*]}"
    pi_proof_stop_pids 5 "${strays[@]}"
    mapfile -t left < <(pi_proof_strays)
    [ ${#left[@]} -eq 0 ] || problems+=("processes still running: ${left[*]}")
  fi
  # The chroot's /proc and /dev, and whatever else is mounted below the work folder (debootstrap's own
  # mounts, if it was stopped half-way), deepest first.
  local mounts=() m
  mapfile -t mounts < <(awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r)
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m"; done
  grep -q " $work/" /proc/mounts && problems+=("mounts under $work remain: $(grep " $work/" /proc/mounts | cut -d' ' -f2 | tr '\n' ' ')")
  local net
  net=$(pi_proof_network_remove) || problems+=("network: $net")
  binfmt=$(pi_restore_binfmt) || problems+=("binfmt: $binfmt")
  local keep_logs="$FB_PI_OUT/$FB_PI_RUN_NAME-logs"
  if [ ${#problems[@]} -gt 0 ]; then
    echo "[pi] not deleting $work" >&2
  elif [ "${FB_PI_KEEP:-0}" = 1 ]; then
    echo "[pi] kept $work" >&2
  else
    rm -rf "$keep_logs"
    mkdir -p "$keep_logs"
    cp -r "$logs/." "$keep_logs/" 2>/dev/null
    echo "[pi] logs in $keep_logs" >&2
    rm -rf "$work"
  fi
  FB_PI_CLEANUP="stopped $stopped started process(es) by pid, ${#strays[@]} leftover(s); rootfs mounts removed; network: $net; binfmt: $binfmt"
  FB_PI_CPU=$cpu
  pi_time_end cleanup 2>/dev/null
  local p
  for p in "${problems[@]}"; do FAILED+=("cleanup: $p"); done
  local final=$rc
  if declare -F pi_proof_report >/dev/null; then
    pi_proof_report "$rc"
    final=$?
  elif [ ${#problems[@]} -gt 0 ] && [ "$final" = 0 ]; then
    printf '[pi] cleanup: %s\n' "${problems[@]}" >&2
    final=1
  fi
  exit "$final"
}

# ---------------------------------------------------------------------------------------------------
pi_proof_host() {
  pi_time_start host-setup
  pi_need_packages "${FB_PI_BUILD_PACKAGES[@]}" "${FB_PI_EMULATION_PACKAGES[@]}"
  pi_enable_binfmt
  pnpm exec tsc -b edge cloud test
  pi_time_end host-setup
}

# The commit and the uncommitted changes the build reads (deploy/pi/build.sh: edge/, protocol/).
pi_checkout_state() { echo "$(git rev-parse HEAD) $(git diff HEAD -- edge protocol | sha256sum)"; }
pi_proof_build() {
  pi_time_start build
  PI_BUILD_STATE=$(pi_checkout_state)
  if [ "${FB_PI_SKIP_BUILD:-0}" = 1 ] && [ -f "$FB_PI_OUT/release.json" ]; then
    pi_log "reusing $FB_PI_OUT (FB_PI_SKIP_BUILD=1)"
  else
    bash deploy/pi/build.sh
  fi
  pi_time_end build
  release="$FB_PI_OUT/release.json"
  deb_file=$(node -p "require('$release').deb.file")
  bundle_file=$(node -p "require('$release').bundle.file")
}

# ---------------------------------------------------------------------------------------------------
# The LAN: the sensors' device runs in a network namespace of its own, joined to this host by a veth pair
# with a private /30 in 10.253.0.0/16 that no interface here uses (HOST_ADDR here, DEVICE_ADDR there). The
# emulated Pi (the chroot) shares this host's network with the collector, so the device reaches the Pi's
# broker, and the Pi the collector and NATS, at HOST_ADDR: an address another machine would use, never
# 127.0.0.1. Names carry this shell's pid; the cleanup deletes the namespace (and with it the pair) and
# fails the run if either remains. Namespaces of earlier runs whose shell is gone are removed first.
DEVICE_NS=
HOST_IF=
pi_proof_network() {
  pi_time_start network
  local ns pid used b c i
  for ns in $(ip netns list 2>/dev/null | sed -n 's/^\(fbpi-[0-9]*-device\)\b.*/\1/p'); do
    pid=${ns#fbpi-}
    pid=${pid%-device}
    kill -0 "$pid" 2>/dev/null || { ip netns del "$ns" && pi_log "removed $ns, left by an earlier run"; }
  done
  used=$(ip -4 -o addr show)
  for ((i = 0; i < 200; i++)); do
    b=$((RANDOM % 254 + 1)) c=$((RANDOM % 64 * 4))
    case "$used" in *" 10.253.$b.$((c + 1))/"* | *" 10.253.$b.$((c + 2))/"*) continue ;; esac
    break
  done
  HOST_ADDR=10.253.$b.$((c + 1))
  DEVICE_ADDR=10.253.$b.$((c + 2))
  DEVICE_NS=fbpi-$$-device
  HOST_IF=fbpi$$h # at most 15 characters
  ip netns add "$DEVICE_NS" || fail_now "network namespace for the device"
  ip link add "$HOST_IF" type veth peer name eth0 netns "$DEVICE_NS" &&
    ip addr add "$HOST_ADDR/30" dev "$HOST_IF" && ip link set "$HOST_IF" up &&
    ip -n "$DEVICE_NS" addr add "$DEVICE_ADDR/30" dev eth0 && ip -n "$DEVICE_NS" link set eth0 up &&
    ip -n "$DEVICE_NS" link set lo up || fail_now "veth pair $HOST_IF ($HOST_ADDR) - $DEVICE_NS ($DEVICE_ADDR)"
  # The device's only way out is the pair: a route to HOST_ADDR's /30 and no default route.
  check "device namespace $DEVICE_ADDR: routes to this host at $HOST_ADDR only" \
    bash -c "ip -n '$DEVICE_NS' route get '$HOST_ADDR' | grep -q 'dev eth0' && ! ip -n '$DEVICE_NS' route get 1.1.1.1 >/dev/null 2>&1"
  pi_time_end network
}
device() { ip netns exec "$DEVICE_NS" "$@"; }

# Deletes the namespace and the pair (after the processes in them were stopped); prints what it did,
# fails when either is still there.
pi_proof_network_remove() {
  [ -n "$DEVICE_NS" ] || {
    echo "none set up"
    return 0
  }
  ip netns del "$DEVICE_NS" 2>/dev/null
  # The kernel removes a namespace's interfaces in the background: the host end goes with its peer.
  local i
  for ((i = 0; i < 50; i++)); do ip link show "$HOST_IF" >/dev/null 2>&1 || break; sleep 0.1; done
  ip link del "$HOST_IF" 2>/dev/null
  local left=()
  ip netns list | grep -qw "$DEVICE_NS" && left+=("namespace $DEVICE_NS")
  ip link show "$HOST_IF" >/dev/null 2>&1 && left+=("interface $HOST_IF")
  if [ ${#left[@]} -gt 0 ]; then
    echo "still there: ${left[*]}"
    return 1
  fi
  echo "namespace $DEVICE_NS and veth $HOST_IF removed"
}

start_nats() {
  nats-server -c "$etc/nats-server.conf" -P "$work/nats.pid" >>"$logs/nats.log" 2>&1 8>&- 9>&- &
  NATS_PID=$!
  PIDS+=("$NATS_PID")
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/$HOST_ADDR/$NATS_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# The collector as deploy/README.md sets it up ("Identities and the central side, step by step"), with
# the collector's settings of deploy/pi/README.md (FB_HTTP_HOST on the LAN, FB_RELEASES_DIR): only the
# addresses, ports and folders differ, and nats-server's monitoring port (fixed there) is off.
# EDGE_ADD_ARGS (array, optional): more arguments for the first edge's `edge add` (e.g. --sensor).
pi_proof_services() {
  pi_time_start services
  read -r NATS_PORT PG_PORT COLL_HTTP MQTT_PORT < <("${HELPER[@]}" free-ports 4 | tr ',' ' ' | tr -d '[]')
  COLLECTOR_URL="http://$HOST_ADDR:$COLL_HTTP"
  # What an operator does: the release files in the collector's FB_RELEASES_DIR.
  releases="$work/releases"
  mkdir -p "$releases"
  cp "$FB_PI_OUT/$deb_file" "$FB_PI_OUT/$bundle_file" "$FB_PI_OUT/SHA256SUMS" "$release" "$releases/"
  etc="$work/etc/fieldbeam"
  install -d "$etc"
  install -m 0644 deploy/nats/nats-server.conf "$etc/nats-server.conf"
  sed -i -e "s|^listen: .*|listen: $HOST_ADDR:$NATS_PORT|" -e 's|^http: |# http: |' \
    -e "s|store_dir: .*|store_dir: $work/nats-store|" -e 's|max_file_store: .*|max_file_store: 4GB|' "$etc/nats-server.conf"
  grep -q '^include ./identity/nats-authorization.conf' "$etc/nats-server.conf" ||
    fail_now "deploy/nats/nats-server.conf includes ./identity/nats-authorization.conf"
  # `fieldbeam-cloud` is the built CLI of this checkout, as the package installs it.
  mkdir -p "$work/bin"
  printf '#!/bin/sh\nexec node %s/cloud/dist/cli.js "$@"\n' "$FB_PI_ROOT" >"$work/bin/fieldbeam-cloud"
  chmod 0755 "$work/bin/fieldbeam-cloud"
  # The collector's settings (/etc/fieldbeam/cloud.env for the package): `run` and `edge add` share them.
  cloud_env=(PATH="$work/bin:$PATH" FB_IDENTITY_DIR="$etc/identity" FB_RELEASES_DIR="$releases"
    FB_HTTP_HOST="$HOST_ADDR" FB_HTTP_PORT="$COLL_HTTP" NATS_URL="nats://$HOST_ADDR:$NATS_PORT"
    FB_DATA_DIR="$work/cloud" FB_EMBEDDED_PG_PORT="$PG_PORT" LOG_LEVEL=warn)
  # The first edge add comes before nats-server's first start: it writes the collector's key and the
  # authorization nats-server includes.
  pi_edge_add "$EDGE_ID" "${EDGE_ADD_ARGS[@]}"
  start_nats || fail_now "nats-server starts (deploy/nats/nats-server.conf)"
  # The collector: creates the streams, ingests into its embedded Postgres, serves the release and the
  # one-time install links. It connects to NATS with collector.nk from FB_IDENTITY_DIR.
  env "${cloud_env[@]}" fieldbeam-cloud run >"$logs/collector.log" 2>&1 8>&- 9>&- &
  COLL_PID=$!
  PIDS+=("$COLL_PID")
  pi_time_end services
}

# `fieldbeam-cloud edge add ID --url COLLECTOR --nats NATS ARGS...` as deploy/pi/README.md writes it (run in
# $work, where it writes ID.user-data unless --out says otherwise), then `nats-server --signal reload=PIDFILE`
# once nats-server runs. The broker's port is a free one (--mqtt-port), not 1883: other programs on this
# host may use that. What it printed: ADD_OUT, ADD_ERR (files), MQTT_USER, MQTT_PASS, INSTALL_CMD (the
# one-line install), INSTALL_URL (its link), USER_DATA (the file it wrote).
pi_edge_add() {
  local id=$1
  shift
  ADD_OUT="$logs/edge-add-$id.out" ADD_ERR="$logs/edge-add-$id.err"
  if ! (cd "$work" && env "${cloud_env[@]}" fieldbeam-cloud edge add "$id" --url "$COLLECTOR_URL" \
    --nats "nats://$HOST_ADDR:$NATS_PORT" --mqtt-port "$MQTT_PORT" "$@") >"$ADD_OUT" 2>"$ADD_ERR"; then
    cat "$ADD_OUT" "$ADD_ERR" >&2
    fail_now "fieldbeam-cloud edge add $id"
  fi
  if [ -n "${NATS_PID:-}" ] && kill -0 "$NATS_PID" 2>/dev/null; then
    nats-server --signal reload="$work/nats.pid" || fail_now "nats-server --signal reload=<pid file> after edge add $id"
  fi
  read -r MQTT_USER MQTT_PASS < <(sed -n 's/^MQTT for sensors .* user \([^ ]*\) password \([^ ]*\)$/\1 \2/p' "$ADD_OUT")
  INSTALL_CMD=$(sed -n 's/^one-line install .*): \(curl .* | sudo sh\)$/\1/p' "$ADD_OUT")
  INSTALL_URL=$(sed -n 's/^one-line install .*: curl -fsSL \([^ ]*\) | sudo sh$/\1/p' "$ADD_OUT")
  USER_DATA=$(sed -n 's/^cloud-init user-data written to \([^:]*\): .*$/\1/p' "$ADD_OUT")
  case "$USER_DATA" in /*) ;; ?*) USER_DATA="$work/$USER_DATA" ;; esac
  [ -n "$MQTT_PASS" ] || fail_now "edge add $id printed the sensors' MQTT user and password"
}

# A fresh copy of the cached rootfs (untarred again for each route): root=$work/rootfs-NAME.
# $1 NAME (default pi), $2 Debian suite (default FB_PI_SUITE), $3 packages beyond minbase, $4 packages
# installed with apt afterwards (pi_rootfs_tarball).
pi_proof_rootfs() {
  local name=${1:-pi} suite=${2:-$FB_PI_SUITE} include=${3:-$FB_PI_ROOTFS_INCLUDE} extra=${4:-} tarball
  pi_time_start "rootfs-$name"
  # On a cache miss debootstrap works below $work, so that the cleanup covers it too.
  tarball=$(TMPDIR="$work" FB_PI_SUITE=$suite pi_rootfs_tarball arm64 "$include" "$extra")
  root="$work/rootfs-$name"
  mkdir -p "$root"
  zstd -dc "$tarball" | tar -x -C "$root"
  # dpkg without an fsync per file, as Debian's container images ship it: a test-only speed-up.
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/fieldbeam-proof-unsafe-io"
  mount -t proc proc "$root/proc"
  mount --bind /dev "$root/dev"
  mount --make-private "$root/dev" 2>/dev/null || true
  check "rootfs $name ($suite) runs arm64" test "$(chroot "$root" uname -m)" = aarch64
  pi_time_end "rootfs-$name"
}
# Unmounts and deletes the current rootfs (after its agent stopped): the next route starts afresh.
pi_proof_rootfs_done() {
  umount "$root/proc" "$root/dev" 2>/dev/null || umount -l "$root/proc" "$root/dev" 2>/dev/null
  rm -rf "$root"
}
# A command in the rootfs as root at boot would run it: a clean environment.
pi_chroot() {
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    LANG=C.UTF-8 QEMU_CPU="$QEMU_CPU_MODEL" "$@"
}

collector_ok() { curl -fsS "$COLLECTOR_URL/healthz" >/dev/null 2>&1; }
pi_proof_collector_ready() {
  pi_time_start collector-ready
  for _ in $(seq 1 240); do
    collector_ok && break
    kill -0 "$COLL_PID" 2>/dev/null || break
    sleep 0.25
  done
  collector_ok || {
    tail -20 "$logs/collector.log" >&2
    fail_now "collector starts (embedded Postgres, streams)"
  }
  # The collector's own role; its random password is kept in the embedded Postgres's data folder.
  DB="postgres://fieldbeam:$(node -p "require('$work/cloud/postgres/fieldbeam-credentials.json').owner.password")@127.0.0.1:$PG_PORT/fieldbeam"
  pi_time_end collector-ready
}

# First boot from user-data, as cloud-init runs it (pi-helper apply-user-data): $1 the user-data file,
# $2 the log's name. Succeeds when the runcmd script ran; what it did is for the caller to check.
pi_proof_first_boot() {
  local user_data=$1 log=${2:-first-boot.log}
  "${HELPER[@]}" apply-user-data --user-data "$user_data" --root "$root" --runcmd "$root/run/fb-runcmd.sh" \
    >"$logs/${log%.log}-apply.json" || fail_now "user-data applied as cloud-init does ($user_data)"
  pi_chroot sh /run/fb-runcmd.sh >"$logs/$log" 2>&1
}

# The agent as its unit runs it: User=, Environment=, ExecStart= from the installed unit file, and what
# systemd does before ExecStart: StateDirectory= and CacheDirectory= owned by the service user.
pi_proof_unit() {
  unit="$root/usr/lib/systemd/system/fieldbeam-edge.service"
  exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
  unit_user=$(sed -n 's/^User=//p' "$unit")
  unit_group=$(sed -n 's/^Group=//p' "$unit")
  mapfile -t unit_env < <(sed -n 's/^Environment=//p' "$unit")
  local d
  for d in $(sed -n 's/^StateDirectory=//p' "$unit"); do chroot "$root" install -d -o "$unit_user" -g "$unit_group" -m 0750 "/var/lib/$d"; done
  for d in $(sed -n 's/^CacheDirectory=//p' "$unit"); do chroot "$root" install -d -o "$unit_user" -g "$unit_group" -m 0750 "/var/cache/$d"; done
  # The agent's status port: the config's http.port, else the agent's default (edge/src/config.ts).
  AGENT_HTTP=$(awk '/^http:/ { h = 1; next } /^[^ #]/ { h = 0 } h && $1 == "port:" { print $2 }' "$root/etc/fieldbeam/edge.yaml")
  AGENT_HTTP=${AGENT_HTTP:-9464}
}

AGENT_PID=
start_agent() { # LOG: starts the agent, waits for its /healthz; AGENT_READY_S says how long that took
  local log=$1 t0
  if (exec 3<>"/dev/tcp/127.0.0.1/$AGENT_HTTP") 2>/dev/null; then
    pi_log "another program listens on 127.0.0.1:$AGENT_HTTP, the agent's status port (the emulated Pi shares this host's network)"
    return 1
  fi
  t0=$(now)
  # chroot and env exec into node: $! is the (qemu-emulated) agent itself.
  # shellcheck disable=SC2086
  chroot --userspec="$unit_user:$unit_group" "$root" /usr/bin/env -i PATH=/usr/bin:/bin LOG_LEVEL=info \
    QEMU_CPU="$QEMU_CPU_MODEL" "${unit_env[@]}" $exec_start >>"$logs/$log" 2>&1 8>&- 9>&- &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$AGENT_HTTP/healthz" >"$work/health.json" 2>/dev/null && {
      AGENT_READY_S=$(since "$t0")
      return 0
    }
    kill -0 "$AGENT_PID" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}
stop_agent() { # SIGTERM like systemctl stop; the exit status must be 0 (clean) within TimeoutStopSec
  kill -TERM "$AGENT_PID"
  local rc=0
  timeout 25 tail --pid="$AGENT_PID" -f /dev/null || return 1
  wait "$AGENT_PID" || rc=$?
  pi_log "agent exited with status $rc"
  [ "$rc" = 0 ]
}

# ---------------------------------------------------------------------------------------------------
# The user-data routes: a Debian trixie rootfs (FB_PI_CLOUD_SUITE), what the cloud-init based Raspberry
# Pi OS releases are built on, and first boot from the user-data on the boot partition (/boot/firmware,
# where Imager writes it).
# FB_PI_CLOUD_INIT=real (default): the rootfs has Debian's cloud-init package, and first boot runs
# cloud-init's own four stages (init --local, init, modules --mode=config, modules --mode=final) with a
# NoCloud seed read from /boot/firmware. The proof's settings (99-fieldbeam-proof.cfg): no network
# configuration, and only the modules that act inside the root, since a chroot shares the host's disks,
# network and clock (growpart, resizefs, mounts, ntp, apt sources and package installs would act on the
# host or need a mirror); all under `unshare --uts`, so that set_hostname sets a private host name.
# FB_PI_CLOUD_INIT=emulated: the same root without cloud-init and pi-helper apply-user-data, which reads
# the file as cloud-init's YAML loader does and runs those modules in cloud-init's order.
FB_PI_CLOUD_INIT=${FB_PI_CLOUD_INIT:-real}
CLOUD_SUITE=${FB_PI_CLOUD_SUITE:-trixie}
CLOUD_INCLUDE=$FB_PI_ROOTFS_INCLUDE
CLOUD_APT=
[ "$FB_PI_CLOUD_INIT" = real ] && CLOUD_APT=cloud-init
CLOUD_INIT_KIND=
pi_cloud_init_boot() { # LOG: first boot from $root/boot/firmware/user-data
  local log=$logs/$1 stage
  if [ "$FB_PI_CLOUD_INIT" != real ]; then
    CLOUD_INIT_KIND="cloud-init's modules emulated by pi-helper apply-user-data"
    pi_proof_first_boot "$root/boot/firmware/user-data" "$1"
    return
  fi
  CLOUD_INIT_KIND="cloud-init $(pi_chroot cloud-init --version 2>&1 | awk '{ print $NF }')"
  # Imager writes meta-data beside user-data; NoCloud needs its instance-id.
  [ -f "$root/boot/firmware/meta-data" ] ||
    echo "instance-id: fieldbeam-proof-$(basename "$root")" >"$root/boot/firmware/meta-data"
  cat >"$root/etc/cloud/cloud.cfg.d/99-fieldbeam-proof.cfg" <<'CFG'
# test/pi/proof-lib.sh: cloud-init in a chroot of the emulation proof (pi_cloud_init_boot says why).
datasource_list: [NoCloud]
datasource:
  NoCloud:
    seedfrom: file:///boot/firmware/
network: {config: disabled}
cloud_init_modules: [seed_random, write_files, set_hostname, update_hostname, update_etc_hosts, users_groups]
cloud_config_modules: [locale, timezone, runcmd]
cloud_final_modules: [write_files_deferred, scripts_per_once, scripts_per_boot, scripts_per_instance, scripts_user, final_message]
CFG
  : >"$log"
  for stage in "init --local" "init" "modules --mode=config" "modules --mode=final"; do
    echo "== cloud-init $stage" >>"$log"
    # shellcheck disable=SC2086
    unshare --uts chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 QEMU_CPU="$QEMU_CPU_MODEL" cloud-init $stage >>"$log" 2>&1 || return 1
  done
  # What runcmd's script printed is in cloud-init's output log.
  echo "== /var/log/cloud-init-output.log" >>"$log"
  cat "$root/var/log/cloud-init-output.log" >>"$log" 2>/dev/null
  cat "$root/run/cloud-init/result.json" >>"$log" 2>/dev/null
  # No module failed (scripts_user fails when the runcmd script exits non-zero).
  node -e "const r = require('$root/run/cloud-init/result.json'); process.exit(r.v1.errors.length === 0 ? 0 : 1)"
}
