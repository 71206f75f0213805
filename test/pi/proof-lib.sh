# shellcheck shell=bash disable=SC2034
# The emulated Raspberry Pi of test/pi/emulation.sh (the proof) and test/pi/bench.sh (`pnpm bench pi`):
# sets it up on this x86-64 host and takes it down again. Source it; it defines functions and settings only.
#
#   pi_proof_begin          root, one run at a time (lock), the work folder, cleanup at exit
#   pi_proof_host           Debian packages, binfmt (what it changes is undone at exit), TypeScript build
#   pi_proof_build          deploy/pi/build.sh (FB_PI_SKIP_BUILD=1 reuses deploy/pi/dist)
#   pi_proof_services       the release folder, provisioning (user-data), nats-server, the collector
#                           (embedded Postgres; serves the release at /edge/releases/ from FB_RELEASES_DIR)
#   pi_proof_rootfs         the cached arm64 rootfs unpacked, /proc and /dev mounted
#   pi_proof_collector_ready
#   pi_proof_first_boot     cloud-init's write_files + runcmd in the chroot: the first-boot script downloads
#                           the .deb from the collector, checks it, installs it with apt, writes the config
#   pi_proof_unit           the installed unit's User=, Environment=, ExecStart=, its state folders
#   start_agent LOG, stop_agent, start_nats
#
# At exit (trap): every process started here is stopped by its pid (TERM, then KILL); anything still
# running in the rootfs or with the work folder in its command line (the collector's Postgres, say) is
# found by /proc and stopped by pid too; the rootfs mounts are removed; binfmt_misc is put back as found;
# the logs are copied to $FB_PI_OUT/<name>-logs and the work folder is deleted. The caller may define
# pi_proof_report RC (prints its summary, returns the exit status).
#
# Settings (besides deploy/pi/lib.sh): FB_PI_KEEP=1 keeps the work folder, FB_PI_QEMU_CPU (default
# cortex-a72, a Pi 4), FB_PI_SKIP_BUILD=1, FB_PI_KEEP_BINFMT=1 leaves binfmt_misc set up.

EDGE_ID=${EDGE_ID:-pi-proof}
QEMU_CPU_MODEL=${FB_PI_QEMU_CPU:-cortex-a72}
HELPER=(node "$FB_PI_ROOT/node_modules/tsx/dist/cli.mjs" "$FB_PI_ROOT/test/pi/pi-helper.ts")

declare -ga PASSED=() FAILED=() PIDS=() PROVISION_ARGS=()
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
json() { node -p "require('$work/provision.json').$1"; }
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
  for r in "$root" "$work"/fb-pi-debootstrap.*/rootfs; do [ -d "$r" ] && roots+=("$r/"); done
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
  FB_PI_CLEANUP="stopped $stopped started process(es) by pid, ${#strays[@]} leftover(s); rootfs mounts removed; binfmt: $binfmt"
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

pi_proof_build() {
  pi_time_start build
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

start_nats() {
  nats-server -c "$work/nats.conf" >>"$logs/nats.log" 2>&1 8>&- 9>&- &
  NATS_PID=$!
  PIDS+=("$NATS_PID")
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# PROVISION_ARGS (array, optional): more arguments for pi-helper provision (e.g. --extra-sensors).
pi_proof_services() {
  pi_time_start services
  read -r NATS_PORT PG_PORT COLL_HTTP MQTT_PORT AGENT_HTTP < <("${HELPER[@]}" free-ports 5 | tr ',' ' ' | tr -d '[]')
  COLLECTOR_URL="http://127.0.0.1:$COLL_HTTP"
  # What an operator does: the release files in the collector's FB_RELEASES_DIR.
  releases="$work/releases"
  mkdir -p "$releases"
  cp "$FB_PI_OUT/$deb_file" "$FB_PI_OUT/$bundle_file" "$FB_PI_OUT/SHA256SUMS" "$release" "$releases/"
  "${HELPER[@]}" provision --out "$work" --edge "$EDGE_ID" --collector-url "$COLLECTOR_URL" \
    --release "$releases/release.json" --nats-url "nats://127.0.0.1:$NATS_PORT" --mqtt-port "$MQTT_PORT" \
    --http-port "$AGENT_HTTP" "${PROVISION_ARGS[@]}" >"$work/provision.json"
  MQTT_USER=$(json mqttUser)
  MQTT_PASS=$(json mqttPassword)

  cat >"$work/nats.conf" <<EOF
listen: 127.0.0.1:$NATS_PORT
jetstream { store_dir: "$work/nats-store", max_memory_store: 256MB, max_file_store: 4GB }
include "nats-auth.conf"
EOF
  start_nats || fail_now "nats-server starts"

  # The collector: creates the streams, ingests into its embedded Postgres, serves the release.
  env NATS_URL="nats://127.0.0.1:$NATS_PORT" NATS_USER=collector NATS_PASS="$(json collectorPassword)" \
    FB_DATA_DIR="$work/cloud" FB_EMBEDDED_PG_PORT="$PG_PORT" FB_HTTP_HOST=127.0.0.1 FB_HTTP_PORT="$COLL_HTTP" \
    FB_RELEASES_DIR="$releases" LOG_LEVEL=warn node cloud/dist/cli.js run >"$logs/collector.log" 2>&1 8>&- 9>&- &
  COLL_PID=$!
  PIDS+=("$COLL_PID")
  pi_time_end services
}

pi_proof_rootfs() {
  pi_time_start rootfs
  local tarball
  # On a cache miss debootstrap works below $work, so that the cleanup covers it too.
  tarball=$(TMPDIR="$work" pi_rootfs_tarball)
  mkdir -p "$root"
  zstd -dc "$tarball" | tar -x -C "$root"
  # dpkg without an fsync per file, as Debian's container images ship it: a test-only speed-up.
  echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/fieldbeam-proof-unsafe-io"
  mount -t proc proc "$root/proc"
  mount --bind /dev "$root/dev"
  mount --make-private "$root/dev" 2>/dev/null || true
  check "rootfs runs arm64" test "$(chroot "$root" uname -m)" = aarch64
  pi_time_end rootfs
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

# First boot: what cloud-init does with the user-data (write_files, then runcmd) in the arm64 chroot.
pi_proof_first_boot() {
  pi_time_start first-boot
  "${HELPER[@]}" apply-user-data --user-data "$work/user-data" --root "$root" --runcmd "$root/run/fb-runcmd.sh" \
    >"$logs/apply-user-data.json"
  if chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin QEMU_CPU="$QEMU_CPU_MODEL" \
    sh /run/fb-runcmd.sh >"$logs/first-boot.log" 2>&1; then
    PASSED+=("first-boot script installs the .deb from the collector")
  else
    tail -30 "$logs/first-boot.log" >&2
    fail_now "first-boot script installs the .deb from the collector"
  fi
  pi_time_end first-boot
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
}

AGENT_PID=
start_agent() { # LOG: starts the agent, waits for its /healthz; AGENT_READY_S says how long that took
  local log=$1 t0
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
