#!/usr/bin/env bash
# Proof that the Raspberry Pi release works, on an x86-64 Debian host, under arm64 emulation
# (binfmt + qemu-user-static, a cached debootstrapped arm64 bookworm rootfs):
#   1. builds the bundle and the .deb (deploy/pi/build.sh), builds them again and compares the bytes
#      (reproducible), looks for the checkout's and the build folder's paths inside, runs lintian
#   2. starts nats-server (JetStream, nkey authorization as `edge add` writes it) and the collector
#      (embedded Postgres), which serves the release at /edge/releases/ from FB_RELEASES_DIR, on 127.0.0.1
#   3. renders the edge's cloud-init user-data, applies it to the rootfs as cloud-init would, and runs
#      its first-boot script in the chroot: download from the collector, sha256, apt-get install of the .deb,
#      config
#   4. runs the agent from its installed files the way the systemd unit does (user, ExecStart, Environment)
#   5. publishes readings from the host with mosquitto_pub and mqtt.js, finds them in Postgres;
#      measures the emulated ingest rate and VmRSS (a short run; `pnpm bench pi` is the benchmark)
#   6. takes NATS away, buffers readings, SIGTERMs the agent (clean exit), checks the buffer file kept
#      them, restarts both and sees them arrive
#   7. systemd-analyze verify on the installed unit; the upgrade from the old /opt/fieldbeam/edge layout,
#      remove and purge keep the config (until purge) and the buffer; the bundle's install.sh path
#   8. cleanup: every process it started (by pid), the chroot mounts, binfmt_misc as it was (a failure
#      of the cleanup fails the run)
# The emulated Pi itself (setup and teardown) is test/pi/proof-lib.sh, shared with test/pi/bench.sh.
# Needs root (chroot, mounts, binfmt). Exits non-zero on any failed check; prints a summary with timings.
# Settings: deploy/pi/lib.sh and test/pi/proof-lib.sh, plus FB_PI_BENCH_COUNT (default 2000).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/pi/lib.sh"
source "$FB_PI_ROOT/test/pi/proof-lib.sh"
source "$FB_PI_ROOT/test/pi/package-checks.sh"
cd "$FB_PI_ROOT"

BENCH_COUNT=${FB_PI_BENCH_COUNT:-2000}

pi_proof_report() {
  local rc=$1 f
  echo
  echo "== Raspberry Pi (linux-arm64) emulation proof =="
  [ -n "${SUMMARY:-}" ] && printf '%s\n' "$SUMMARY"
  echo "timings (wall):"
  pi_time_report
  printf '  %-28s %s\n' "cpu (user sys, children)" "$FB_PI_CPU"
  printf '  %-28s %s\n' "host load average" "$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "cleanup: $FB_PI_CLEANUP"
  for f in "${FAILED[@]}"; do echo "  FAILED: $f"; done
  [ "$rc" -ne 0 ] && [ ${#FAILED[@]} -eq 0 ] && FAILED+=("aborted (exit $rc)")
  echo "pi: ${#PASSED[@]} passed, ${#FAILED[@]} failed"
  if [ -n "${SUMMARY:-}" ]; then
    cat >"$FB_PI_OUT/emulation-result.json" <<EOF
{ "ok": $([ ${#FAILED[@]} -eq 0 ] && [ "$rc" = 0 ] && echo true || echo false), "node": "$FB_PI_NODE_VERSION", "qemuCpu": "$QEMU_CPU_MODEL",
  "bundleBytes": $bundle_size, "debBytes": $deb_size, "agentReadySeconds": $AGENT_READY_FIRST_S,
  "agentRestartReadySeconds": $AGENT_READY_AGAIN_S, "ingestPerSecond": $bench_rate, "rssMiB": $bench_rss,
  "hwmMiB": $bench_hwm, "benchCount": $BENCH_COUNT, "benchEndToEndMs": $bench_e2e_ms,
  "seconds": $(printf '%s\n' "${FB_PI_TIMES[@]}" | sed -n 's/^total=//p'), "checks": ${#PASSED[@]}, "failed": ${#FAILED[@]} }
EOF
  fi
  [ ${#FAILED[@]} -eq 0 ] || return 1
  return "$rc"
}

pi_proof_begin emulation
pi_proof_host
pi_proof_build
pi_proof_package
# The collector starts in the background (embedded Postgres, migrations, streams) while the rootfs unpacks.
pi_proof_services
pi_proof_rootfs
pi_proof_collector_ready

served() { # the collector serves the release the build made: release.json as built, the .deb's sha256 as listed
  cmp -s <(curl -fsS "$COLLECTOR_URL/edge/releases/release.json") "$release" &&
    [ "$(curl -fsS "$COLLECTOR_URL/edge/releases/$deb_file" | sha256sum | cut -d' ' -f1)" = "$(node -p "require('$release').deb.sha256")" ]
}
check "collector serves the release at /edge/releases/ (FB_RELEASES_DIR)" served
check "collector refuses a path outside its releases folder (400)" \
  test "$(curl -s -o /dev/null -w '%{http_code}' --path-as-is "$COLLECTOR_URL/edge/releases/..%2frelease.json")" = 400

pi_proof_first_boot
check "first boot downloaded from the collector's /edge/releases/" \
  grep -q "downloading $COLLECTOR_URL/edge/releases/$deb_file" "$logs/first-boot.log"
check "package installed (dpkg status)" test "$(chroot "$root" dpkg-query -W -f='${Status}' fieldbeam-edge)" = "install ok installed"
check "fieldbeam system user" chroot "$root" getent passwd fieldbeam >/dev/null
owner() { chroot "$root" stat -c '%U:%G %a' "$1"; } # the host does not know the fieldbeam uid
check "config root:fieldbeam 0640" test "$(owner /etc/fieldbeam/edge.yaml)" = "root:fieldbeam 640"
check "seed root:fieldbeam 0640" test "$(owner /etc/fieldbeam/edge.nk)" = "root:fieldbeam 640"
check "buffer dir fieldbeam 0750" test "$(owner /var/lib/fieldbeam)" = "fieldbeam:fieldbeam 750"
check "service enabled (multi-user.target.wants)" test -L "$root/etc/systemd/system/multi-user.target.wants/fieldbeam-edge.service"
check "bundled node is arm64 $FB_PI_NODE_VERSION" test "$(chroot "$root" /usr/bin/env -i /usr/lib/fieldbeam-edge/node/bin/node -p 'process.arch+" "+process.version')" = "arm64 v$FB_PI_NODE_VERSION"

# ---------------------------------------------------------------------------------------------------
pi_proof_unit
pi_time_start agent-start
start_agent agent-1.log || { tail -20 "$logs/agent-1.log" >&2; fail_now "agent starts from the installed files"; }
AGENT_READY_FIRST_S=$AGENT_READY_S
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
AGENT_READY_AGAIN_S=$AGENT_READY_S
check "buffered readings reach Postgres after restart (50)" pgc --db "$DB" --edge "$EDGE_ID" --station outage-1 --count 50
check "SIGTERM again: exits 0" stop_agent
pi_time_end buffer-survives

# ---------------------------------------------------------------------------------------------------
pi_time_start package-lifecycle
# systemd-analyze on the host, against the rootfs, so the unit's paths (node, /bin/sh) resolve. The minbase
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
# Upgrade from the layout of earlier packages (/opt/fieldbeam/edge): that package, then this one over it.
pi_old_layout_deb "$FB_PI_OUT/$deb_file" "$root/tmp/old-layout.deb"
check "earlier package (/opt/fieldbeam/edge) installs over this one" chroot_sh "dpkg -i /tmp/old-layout.deb"
check "earlier package's CLI is /opt/fieldbeam/edge/bin/fieldbeam-edge" \
  test "$(chroot "$root" readlink -f /usr/bin/fieldbeam-edge)" = /opt/fieldbeam/edge/bin/fieldbeam-edge
check "upgrade from /opt/fieldbeam/edge succeeds" chroot_sh "dpkg -i /tmp/$deb_file"
check "upgrade moved the program to /usr/lib/fieldbeam-edge, nothing left in /opt" \
  bash -c "test -x '$root/usr/lib/fieldbeam-edge/node/bin/node' && ! test -e '$root/opt/fieldbeam'"
check "upgrade kept the config, the seed, the buffer and the enabled service" \
  bash -c "test -f '$buffer' && test -f '$root/etc/fieldbeam/edge.yaml' && test -f '$root/etc/fieldbeam/edge.nk' &&
    test -L '$root/etc/systemd/system/multi-user.target.wants/fieldbeam-edge.service'"
check "after the upgrade, fieldbeam-edge check accepts the kept config" \
  chroot_sh "fieldbeam-edge check --config /etc/fieldbeam/edge.yaml"
check "reinstall (same version) succeeds" chroot_sh "dpkg -i /tmp/$deb_file"
check "buffer kept on upgrade" test -f "$buffer"
check "dpkg -r succeeds" chroot_sh "dpkg -r fieldbeam-edge"
check "buffer kept on removal, program files gone" bash -c "test -f '$buffer' && ! test -e '$root/usr/lib/fieldbeam-edge'"
check "dpkg -P succeeds" chroot_sh "dpkg -P fieldbeam-edge"
check "buffer kept on purge, config and seed gone" bash -c "test -f '$buffer' && ! test -e '$root/etc/fieldbeam/edge.yaml' && ! test -e '$root/etc/fieldbeam/edge.nk'"

# The bundle path: install.sh from the tar.zst, then the agent's Node loads the arm64 addon.
mkdir -p "$root/tmp/bundle"
zstd -dc "$FB_PI_OUT/$bundle_file" | tar -x -C "$root/tmp/bundle"
# As if an earlier bundle had been installed where those went (/opt/fieldbeam/edge): install.sh replaces it.
mkdir -p "$root/opt/fieldbeam"
cp -a "$root"/tmp/bundle/*/ "$root/opt/fieldbeam/edge"
check "bundle install.sh installs (over an earlier bundle in /opt/fieldbeam/edge)" chroot_sh "/tmp/bundle/*/install.sh"
check "bundle: the earlier /opt/fieldbeam/edge is gone" test ! -e "$root/opt/fieldbeam"
check "bundle: node + better-sqlite3 (arm64) work" chroot_sh "cd /usr/lib/fieldbeam-edge/app && /usr/lib/fieldbeam-edge/node/bin/node -e \"const D=require('better-sqlite3'); const d=new D(':memory:'); if (process.arch!=='arm64' || d.prepare('select 1 x').get().x!==1) process.exit(1)\""
check "bundle: CLI on PATH" test "$(chroot "$root" readlink -f /usr/local/bin/fieldbeam-edge)" = /usr/lib/fieldbeam-edge/bin/fieldbeam-edge
check "bundle install.sh --uninstall" chroot_sh "/tmp/bundle/*/install.sh --uninstall"
pi_time_end package-lifecycle

pi_time_end total
deb_size=$(stat -c %s "$FB_PI_OUT/$deb_file")
bundle_size=$(stat -c %s "$FB_PI_OUT/$bundle_file")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
SUMMARY="artifacts: bundle $bundle_file $(mib "$bundle_size"), deb $deb_file $(mib "$deb_size"), Node $FB_PI_NODE_VERSION
package: ${PACKAGE_FILES:-?} files, installed size ${PACKAGE_INSTALLED_KB:-?} KiB (lintian: $(grep -c '^[EW]: ' "$logs/lintian.log" 2>/dev/null || true) errors or warnings)
emulated (qemu-user, QEMU_CPU=$QEMU_CPU_MODEL; not Pi figures): agent ready in ${AGENT_READY_FIRST_S}s (first start),
  ${AGENT_READY_AGAIN_S}s (restart, compile cache warm); ingest $bench_rate readings/s (mqtt.js QoS 1, window 64,
  $BENCH_COUNT readings; all in Postgres after ${bench_e2e_ms} ms); agent VmRSS peak $bench_rss MiB (VmHWM $bench_hwm MiB,
  includes qemu's translation cache). The benchmark proper: pnpm bench pi
unit: systemd-analyze security exposure ${exposure:-n/a}"
