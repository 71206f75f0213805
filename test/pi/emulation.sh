#!/usr/bin/env bash
# Proof that the Raspberry Pi release works, on an x86-64 Debian host, under arm64 emulation
# (binfmt + qemu-user-static, a cached debootstrapped arm64 bookworm rootfs):
#   1. builds the bundle and the .deb (deploy/pi/build.sh)
#   2. starts nats-server (JetStream, nkey authorization as `edge add` writes it), the collector
#      (embedded Postgres) and a file server standing in for the collector's release route, all on 127.0.0.1
#   3. renders the edge's cloud-init user-data, applies it to the rootfs as cloud-init would, and runs
#      its first-boot script in the chroot: download, sha256, apt-get install of the .deb, config
#   4. runs the agent from its installed files the way the systemd unit does (user, ExecStart, Environment)
#   5. publishes readings from the host with mosquitto_pub and mqtt.js, finds them in Postgres;
#      measures the emulated ingest rate and VmRSS
#   6. takes NATS away, buffers readings, SIGTERMs the agent (clean exit), checks the buffer file kept
#      them, restarts both and sees them arrive
#   7. systemd-analyze verify on the installed unit; reinstall (upgrade), remove and purge keep the buffer;
#      the bundle's install.sh path
# Needs root (chroot, mounts, binfmt). Exits non-zero on any failed check; prints a summary with timings.
# Settings: deploy/pi/lib.sh, plus FB_PI_KEEP=1 (keep the work folder), FB_PI_BENCH_COUNT (default 2000),
# FB_PI_QEMU_CPU (default cortex-a72, a Pi 4), FB_PI_SKIP_BUILD=1 (reuse deploy/pi/dist).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/pi/lib.sh"
cd "$FB_PI_ROOT"

[ "$(id -u)" = 0 ] || pi_die "run as root (chroot, mounts, binfmt_misc)"
EDGE_ID=pi-proof
BENCH_COUNT=${FB_PI_BENCH_COUNT:-2000}
QEMU_CPU_MODEL=${FB_PI_QEMU_CPU:-cortex-a72}
HELPER=(node "$FB_PI_ROOT/node_modules/tsx/dist/cli.mjs" "$FB_PI_ROOT/test/pi/pi-helper.ts")

declare -a PASSED=() FAILED=() PIDS=()
pgc() { "${HELPER[@]}" pg-count "$@" >>"$logs/pg-count.jsonl"; }
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

pi_time_start total
work=$(mktemp -d /var/tmp/fb-pi-proof.XXXXXX)
chmod 0755 "$work" # the embedded Postgres runs as an unprivileged user
root="$work/rootfs"
logs="$work/logs"
mkdir -p "$logs"

mounted() { grep -q " $1 " /proc/mounts; }
cleanup() {
  local rc=$? pid cpu
  set +e
  times >"$work/times.txt"
  cpu=$(tail -1 "$work/times.txt")
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
  done
  for m in "$root/dev" "$root/proc"; do
    mounted "$m" && { umount "$m" || umount -l "$m"; }
  done
  if grep -q " $work/" /proc/mounts; then
    echo "[pi] mounts under $work remain; not deleting it:" >&2
    grep " $work/" /proc/mounts >&2
  elif [ "${FB_PI_KEEP:-0}" = 1 ]; then
    echo "[pi] kept $work" >&2
  else
    rm -rf "$FB_PI_OUT/emulation-logs"
    mkdir -p "$FB_PI_OUT/emulation-logs"
    cp -r "$logs/." "$FB_PI_OUT/emulation-logs/" 2>/dev/null
    echo "[pi] logs in $FB_PI_OUT/emulation-logs" >&2
    rm -rf "$work"
  fi
  echo
  echo "== Raspberry Pi (linux-arm64) emulation proof =="
  [ -n "${SUMMARY:-}" ] && printf '%s\n' "$SUMMARY"
  echo "timings (wall):"
  pi_time_report
  printf '  %-28s %s\n' "cpu (user sys, children)" "$cpu"
  printf '  %-28s %s\n' "host load average" "$(cut -d' ' -f1-3 /proc/loadavg)"
  local f
  for f in "${FAILED[@]}"; do echo "  FAILED: $f"; done
  [ $rc -ne 0 ] && [ ${#FAILED[@]} -eq 0 ] && FAILED+=("aborted (exit $rc)")
  echo "pi: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
  [ ${#FAILED[@]} -eq 0 ] || exit 1
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------
pi_time_start host-setup
pi_need_packages "${FB_PI_BUILD_PACKAGES[@]}" "${FB_PI_EMULATION_PACKAGES[@]}"
pi_enable_binfmt
pnpm exec tsc -b edge cloud test
pi_time_end host-setup

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

pi_time_start rootfs
tarball=$(pi_rootfs_tarball)
mkdir -p "$root"
zstd -dc "$tarball" | tar -x -C "$root"
# dpkg without an fsync per file, as Debian's container images ship it: a test-only speed-up.
echo force-unsafe-io >"$root/etc/dpkg/dpkg.cfg.d/fieldbeam-proof-unsafe-io"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --make-private "$root/dev" 2>/dev/null || true
check "rootfs runs arm64" test "$(chroot "$root" uname -m)" = aarch64
pi_time_end rootfs

# ---------------------------------------------------------------------------------------------------
pi_time_start services
read -r NATS_PORT PG_PORT COLL_HTTP WWW_PORT MQTT_PORT AGENT_HTTP < <("${HELPER[@]}" free-ports 6 | tr ',' ' ' | tr -d '[]')
www="$work/www"
mkdir -p "$www/edge/releases"
cp "$FB_PI_OUT/$deb_file" "$FB_PI_OUT/$bundle_file" "$release" "$www/edge/releases/"
"${HELPER[@]}" provision --out "$work" --edge "$EDGE_ID" --collector-url "http://127.0.0.1:$WWW_PORT" \
  --release "$release" --nats-url "nats://127.0.0.1:$NATS_PORT" --mqtt-port "$MQTT_PORT" \
  --http-port "$AGENT_HTTP" >"$work/provision.json"
json() { node -p "require('$work/provision.json').$1"; }
MQTT_USER=$(json mqttUser)
MQTT_PASS=$(json mqttPassword)

cat >"$work/nats.conf" <<EOF
listen: 127.0.0.1:$NATS_PORT
jetstream { store_dir: "$work/nats-store", max_memory_store: 256MB, max_file_store: 4GB }
include "nats-auth.conf"
EOF
start_nats() {
  nats-server -c "$work/nats.conf" >>"$logs/nats.log" 2>&1 &
  NATS_PID=$!
  PIDS+=("$NATS_PID")
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
start_nats || fail_now "nats-server starts"

python3 -m http.server --bind 127.0.0.1 --directory "$www" "$WWW_PORT" >"$logs/www.log" 2>&1 &
PIDS+=($!)

# The collector: creates the streams, ingests into its embedded Postgres.
env NATS_URL="nats://127.0.0.1:$NATS_PORT" NATS_USER=collector NATS_PASS="$(json collectorPassword)" \
  FB_DATA_DIR="$work/cloud" FB_EMBEDDED_PG_PORT="$PG_PORT" FB_HTTP_HOST=127.0.0.1 FB_HTTP_PORT="$COLL_HTTP" \
  LOG_LEVEL=warn node cloud/dist/cli.js run >"$logs/collector.log" 2>&1 &
COLL_PID=$!
PIDS+=("$COLL_PID")
DB="postgres://postgres:postgres@127.0.0.1:$PG_PORT/fieldbeam"
pi_time_end services

# ---------------------------------------------------------------------------------------------------
# First boot: what cloud-init does with the user-data (write_files, then runcmd) in the arm64 chroot.
pi_time_start first-boot
"${HELPER[@]}" apply-user-data --user-data "$work/user-data" --root "$root" --runcmd "$root/run/fb-runcmd.sh" \
  >"$logs/apply-user-data.json"
if chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin QEMU_CPU="$QEMU_CPU_MODEL" \
  sh /run/fb-runcmd.sh >"$logs/first-boot.log" 2>&1; then
  PASSED+=("first-boot script installs the .deb from the collector URL")
else
  tail -30 "$logs/first-boot.log" >&2
  fail_now "first-boot script installs the .deb from the collector URL"
fi
check "package installed (dpkg status)" test "$(chroot "$root" dpkg-query -W -f='${Status}' fieldbeam-edge)" = "install ok installed"
check "fieldbeam system user" chroot "$root" getent passwd fieldbeam >/dev/null
owner() { chroot "$root" stat -c '%U:%G %a' "$1"; } # the host does not know the fieldbeam uid
check "config root:fieldbeam 0640" test "$(owner /etc/fieldbeam/edge.yaml)" = "root:fieldbeam 640"
check "seed root:fieldbeam 0640" test "$(owner /etc/fieldbeam/edge.nk)" = "root:fieldbeam 640"
check "buffer dir fieldbeam 0750" test "$(owner /var/lib/fieldbeam)" = "fieldbeam:fieldbeam 750"
check "service enabled (multi-user.target.wants)" test -L "$root/etc/systemd/system/multi-user.target.wants/fieldbeam-edge.service"
check "bundled node is arm64 $FB_PI_NODE_VERSION" test "$(chroot "$root" /usr/bin/env -i /opt/fieldbeam/edge/node/bin/node -p 'process.arch+" "+process.version')" = "arm64 v$FB_PI_NODE_VERSION"
pi_time_end first-boot

# The collector started in the background meanwhile (embedded Postgres, migrations, streams).
pi_time_start collector-ready
collector_ok() { curl -fsS "http://127.0.0.1:$COLL_HTTP/healthz" >/dev/null 2>&1; }
for _ in $(seq 1 240); do collector_ok && break; kill -0 "$COLL_PID" 2>/dev/null || break; sleep 0.5; done
collector_ok || { tail -20 "$logs/collector.log" >&2; fail_now "collector starts (embedded Postgres, streams)"; }
pi_time_end collector-ready

# ---------------------------------------------------------------------------------------------------
# The agent as its unit runs it: User=, Environment=, ExecStart= from the installed unit file.
unit="$root/usr/lib/systemd/system/fieldbeam-edge.service"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
unit_user=$(sed -n 's/^User=//p' "$unit")
unit_group=$(sed -n 's/^Group=//p' "$unit")
mapfile -t unit_env < <(sed -n 's/^Environment=//p' "$unit")
# What systemd does before ExecStart: StateDirectory= and CacheDirectory= owned by the service user.
for d in $(sed -n 's/^StateDirectory=//p' "$unit"); do chroot "$root" install -d -o "$unit_user" -g "$unit_group" -m 0750 "/var/lib/$d"; done
for d in $(sed -n 's/^CacheDirectory=//p' "$unit"); do chroot "$root" install -d -o "$unit_user" -g "$unit_group" -m 0750 "/var/cache/$d"; done
AGENT_PID=
start_agent() {
  local log=$1
  # chroot and env exec into node: $! is the (qemu-emulated) agent itself.
  # shellcheck disable=SC2086
  chroot --userspec="$unit_user:$unit_group" "$root" /usr/bin/env -i PATH=/usr/bin:/bin LOG_LEVEL=info \
    QEMU_CPU="$QEMU_CPU_MODEL" "${unit_env[@]}" $exec_start >>"$logs/$log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
  local t0=$SECONDS
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$AGENT_HTTP/healthz" >"$work/health.json" 2>/dev/null && {
      AGENT_READY_S=$((SECONDS - t0))
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

pi_time_start agent-start
start_agent agent-1.log || { tail -20 "$logs/agent-1.log" >&2; fail_now "agent starts from the installed files"; }
PASSED+=("agent starts from the installed files (ready in ${AGENT_READY_S}s)")
pi_time_end agent-start

pi_time_start end-to-end
for i in 1 2 3 4 5; do
  mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -u "$MQTT_USER" -P "$MQTT_PASS" -q 1 -i "mosq-$i" \
    -t sensors/mosq-1/temperature -m "2$i.5" || FAILED+=("mosquitto_pub #$i")
done
"${HELPER[@]}" publish --port "$MQTT_PORT" --user "$MQTT_USER" --pass "$MQTT_PASS" --station mqttjs-1 --count 200 \
  >"$logs/publish-mqttjs.json" || fail_now "mqtt.js publishes 200 readings (QoS 1)"
check "mosquitto_pub readings in Postgres (5)" pgc --db "$DB" --edge "$EDGE_ID" --station mosq-1 --count 5
check "mqtt.js readings in Postgres (200)" pgc --db "$DB" --edge "$EDGE_ID" --station mqttjs-1 --count 200
check "no wrong-password login" bash -c "! mosquitto_pub -h 127.0.0.1 -p $MQTT_PORT -u $MQTT_USER -P wrong-password -q 1 -t sensors/x/temperature -m 1 2>/dev/null"
pi_time_end end-to-end

pi_time_start bench
"${HELPER[@]}" publish --port "$MQTT_PORT" --user "$MQTT_USER" --pass "$MQTT_PASS" --station bench-1 \
  --count "$BENCH_COUNT" --window 64 --pid "$AGENT_PID" >"$logs/bench.json" || fail_now "bench publish"
"${HELPER[@]}" pg-count --db "$DB" --edge "$EDGE_ID" --station bench-1 --count "$BENCH_COUNT" --timeout-s 120 \
  >"$logs/bench-pg.json" && PASSED+=("bench readings in Postgres ($BENCH_COUNT)") || FAILED+=("bench readings in Postgres")
bench_rate=$(node -p "require('$logs/bench.json').perSecond")
bench_rss=$(node -p "Math.round(require('$logs/bench.json').rssKb/1024)")
bench_hwm=$(node -p "Math.round(require('$logs/bench.json').hwmKb/1024)")
bench_e2e_ms=$(node -p "require('$logs/bench-pg.json').waitedMs")
pi_time_end bench

# ---------------------------------------------------------------------------------------------------
# Outage: NATS away, readings buffered, SIGTERM, the buffer file keeps them, restart delivers them.
pi_time_start buffer-survives
kill -TERM "$NATS_PID"
wait "$NATS_PID" 2>/dev/null || true
"${HELPER[@]}" publish --port "$MQTT_PORT" --user "$MQTT_USER" --pass "$MQTT_PASS" --station outage-1 --count 50 \
  >"$logs/publish-outage.json" || fail_now "readings accepted while NATS is down"
check "SIGTERM: agent exits 0 (flushes, closes)" stop_agent
buffer="$root/var/lib/fieldbeam/$EDGE_ID.buffer.sqlite"
check "buffer file survives the stop" test -f "$buffer"
check "buffer file owned by fieldbeam" test "$(chroot "$root" stat -c %U "/var/lib/fieldbeam/$EDGE_ID.buffer.sqlite")" = fieldbeam
"${HELPER[@]}" buffer-rows --file "$buffer" >"$logs/buffer-rows.json" || true
buffered=$(node -p "require('$logs/buffer-rows.json').rows" 2>/dev/null || echo 0)
check "buffer holds the 50 unsent readings (found $buffered), intact" \
  node -e "const b=require('$logs/buffer-rows.json'); process.exit(b.rows===50 && b.quickCheck==='ok' ? 0 : 1)"
start_nats || fail_now "nats-server restarts"
start_agent agent-2.log || { tail -20 "$logs/agent-2.log" >&2; fail_now "agent restarts on the kept buffer"; }
check "buffered readings reach Postgres after restart (50)" pgc --db "$DB" --edge "$EDGE_ID" --station outage-1 --count 50
check "SIGTERM again: exits 0" stop_agent
pi_time_end buffer-survives

# ---------------------------------------------------------------------------------------------------
pi_time_start package-lifecycle
# systemd-analyze on the host, against the rootfs, so the unit's paths (node, /bin/kill) resolve. The minbase
# rootfs has no systemd: lend it the host's targets (sysinit.target, ...), which a Pi has.
cp -n /usr/lib/systemd/system/*.target "$root/usr/lib/systemd/system/"
if systemd-analyze verify --root="$root" fieldbeam-edge.service >"$logs/systemd-analyze.log" 2>&1 &&
  ! grep -q . "$logs/systemd-analyze.log"; then
  PASSED+=("systemd-analyze verify (unit)")
else
  cat "$logs/systemd-analyze.log" >&2
  FAILED+=("systemd-analyze verify (unit)")
fi
systemd-analyze security --offline=true --root="$root" fieldbeam-edge.service >"$logs/systemd-security.log" 2>&1 || true
exposure=$(grep -o 'Overall exposure level for .*' "$logs/systemd-security.log" | sed 's/.*: //' || true)

cp "$FB_PI_OUT/$deb_file" "$root/tmp/"
chroot_sh() { chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin QEMU_CPU="$QEMU_CPU_MODEL" sh -c "$1" >>"$logs/lifecycle.log" 2>&1; }
check "reinstall (upgrade path) succeeds" chroot_sh "dpkg -i /tmp/$deb_file"
check "buffer kept on upgrade" test -f "$buffer"
check "dpkg -r succeeds" chroot_sh "dpkg -r fieldbeam-edge"
check "buffer kept on removal, program files gone" bash -c "test -f '$buffer' && ! test -e '$root/opt/fieldbeam/edge'"
check "dpkg -P succeeds" chroot_sh "dpkg -P fieldbeam-edge"
check "buffer kept on purge, config and seed gone" bash -c "test -f '$buffer' && ! test -e '$root/etc/fieldbeam/edge.yaml' && ! test -e '$root/etc/fieldbeam/edge.nk'"

# The bundle path: install.sh from the tar.zst, then the agent's Node loads the arm64 addon.
mkdir -p "$root/tmp/bundle"
zstd -dc "$FB_PI_OUT/$bundle_file" | tar -x -C "$root/tmp/bundle"
check "bundle install.sh installs" chroot_sh "/tmp/bundle/*/install.sh"
check "bundle: node + better-sqlite3 (arm64) work" chroot_sh "cd /opt/fieldbeam/edge/app && /opt/fieldbeam/edge/node/bin/node -e \"const D=require('better-sqlite3'); const d=new D(':memory:'); if (process.arch!=='arm64' || d.prepare('select 1 x').get().x!==1) process.exit(1)\""
check "bundle: CLI on PATH" test "$(chroot "$root" readlink -f /usr/local/bin/fieldbeam-edge)" = /opt/fieldbeam/edge/bin/fieldbeam-edge
check "bundle install.sh --uninstall" chroot_sh "/tmp/bundle/*/install.sh --uninstall"
pi_time_end package-lifecycle

pi_time_end total
deb_size=$(stat -c %s "$FB_PI_OUT/$deb_file")
bundle_size=$(stat -c %s "$FB_PI_OUT/$bundle_file")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
SUMMARY="artifacts: bundle $bundle_file $(mib "$bundle_size"), deb $deb_file $(mib "$deb_size"), Node $FB_PI_NODE_VERSION
emulated (qemu-user, QEMU_CPU=$QEMU_CPU_MODEL; not Pi figures): agent ready in ${AGENT_READY_S}s,
  ingest $bench_rate readings/s (mqtt.js QoS 1, window 64, $BENCH_COUNT readings; all in Postgres after ${bench_e2e_ms} ms),
  agent VmRSS peak $bench_rss MiB (VmHWM $bench_hwm MiB, includes qemu's translation cache)
unit: systemd-analyze security exposure ${exposure:-n/a}"
mkdir -p "$FB_PI_OUT"
cat >"$FB_PI_OUT/emulation-result.json" <<EOF
{ "ok": $([ ${#FAILED[@]} -eq 0 ] && echo true || echo false), "node": "$FB_PI_NODE_VERSION", "qemuCpu": "$QEMU_CPU_MODEL",
  "bundleBytes": $bundle_size, "debBytes": $deb_size, "agentReadySeconds": ${AGENT_READY_S:-null},
  "ingestPerSecond": $bench_rate, "rssMiB": $bench_rss, "hwmMiB": $bench_hwm, "benchCount": $BENCH_COUNT,
  "benchEndToEndMs": $bench_e2e_ms, "seconds": $(printf '%s\n' "${FB_PI_TIMES[@]}" | sed -n 's/^total=//p') }
EOF
