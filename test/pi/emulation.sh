#!/usr/bin/env bash
# Proof that the Raspberry Pi release works, on an x86-64 Debian host, under arm64 emulation
# (binfmt + qemu-user-static, cached debootstrapped arm64 roots), following the Pi owner's path as
# deploy/pi/README.md writes it:
#   1. builds the bundle and the .deb (deploy/pi/build.sh), builds them again and compares the bytes
#      (reproducible), looks for the checkout's and the build folder's paths inside, runs lintian
#   2. a LAN: a network namespace for a sensor device, joined to this host by a veth pair; the collector,
#      NATS and the emulated Pi are reached at the host's address on it, never 127.0.0.1
#   3. the collector as deploy/README.md runs it: nats-server.conf from deploy/nats with the identity folder
#      beside it, `fieldbeam-cloud edge add` (the first before nats-server starts), `fieldbeam-cloud run`
#      with FB_IDENTITY_DIR, FB_RELEASES_DIR and FB_HTTP_HOST; nats-server reloaded after each edge add
#   4. per first-boot route, on a fresh copy of the rootfs, with what `edge add --url` printed:
#      (a) the one-line install `curl -fsSL <link> | sudo sh` on bookworm; (c) the user-data it wrote on
#      the boot partition of a trixie root; (b) Raspberry Pi Imager's user-data merged by
#      `edge add --user-data-from`; cloud-init's own stages run in the trixie root. Then: the package
#      came from the collector and is installed, the seed is in /etc/fieldbeam/edge.nk only, the link
#      answers 410 the second time; the agent runs as its unit runs it; the device publishes Zigbee2MQTT
#      and Tasmota readings with the printed credentials (mosquitto_pub in its namespace) and they reach
#      Postgres; SIGTERM stops the agent cleanly
#   5. on route (a) also: mqtt.js readings, a short ingest measurement (`pnpm bench pi` is the benchmark),
#      NATS taken away with readings buffered across a SIGTERM and delivered after a restart,
#      systemd-analyze verify, the upgrade from the old /opt/fieldbeam/edge layout, remove and purge
#      keeping the config (until purge) and the buffer, the bundle's install.sh
#   6. cleanup: every process it started (by pid), the chroot mounts, the network namespace, binfmt_misc
#      as it was (a failure of the cleanup fails the run)
# The emulated Pi itself (setup and teardown) is test/pi/proof-lib.sh, shared with test/pi/bench.sh.
# Needs root (chroot, mounts, binfmt, network namespaces). Exits non-zero on any failed check; prints a
# summary with timings.
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
pi_proof_network
EDGE_ID=pi-line
pi_proof_services
pi_proof_rootfs line
pi_proof_collector_ready

served() { # the collector serves the release the build made: release.json as built, the .deb's sha256 as listed
  cmp -s <(curl -fsS "$COLLECTOR_URL/edge/releases/release.json") "$release" &&
    [ "$(curl -fsS "$COLLECTOR_URL/edge/releases/$deb_file" | sha256sum | cut -d' ' -f1)" = "$(node -p "require('$release').deb.sha256")" ]
}
check "collector serves the release at /edge/releases/ (FB_RELEASES_DIR)" served
check "collector refuses a path outside its releases folder (400)" \
  test "$(curl -s -o /dev/null -w '%{http_code}' --path-as-is "$COLLECTOR_URL/edge/releases/..%2frelease.json")" = 400

# ---------------------------------------------------------------------------------------------------
# What every route checks. edge add: the URLs are LAN addresses, so no warning; what it printed.
edge_add_checks() { # ROUTE
  check "$1: edge add warns about nothing (collector, NATS and FB_HTTP_HOST on $HOST_ADDR)" \
    bash -c "! grep -q . '$ADD_ERR'"
  check "$1: edge add printed a one-line install for $COLLECTOR_URL/edge/install/<token>" \
    bash -c "[[ '$INSTALL_URL' == '$COLLECTOR_URL/edge/install/'* ]] && [ '$INSTALL_CMD' = 'curl -fsSL $INSTALL_URL | sudo sh' ]"
}
# After first boot: the package from the collector, its files, the seed in one place only, the link used up.
first_boot_checks() { # ROUTE LOG
  local r=$1 log=$logs/$2
  check "$r: first boot downloaded the .deb from the collector's /edge/releases/" \
    grep -q "downloading $COLLECTOR_URL/edge/releases/$deb_file" "$log"
  check "$r: package installed (dpkg status)" test "$(chroot "$root" dpkg-query -W -f='${Status}' fieldbeam-edge 2>/dev/null)" = "install ok installed"
  check "$r: fieldbeam system user" chroot "$root" getent passwd fieldbeam >/dev/null
  owner() { chroot "$root" stat -c '%U:%G %a' "$1"; } # the host does not know the fieldbeam uid
  check "$r: config root:fieldbeam 0640" test "$(owner /etc/fieldbeam/edge.yaml)" = "root:fieldbeam 640"
  check "$r: seed root:fieldbeam 0640" test "$(owner /etc/fieldbeam/edge.nk)" = "root:fieldbeam 640"
  check "$r: buffer dir fieldbeam 0750" test "$(owner /var/lib/fieldbeam)" = "fieldbeam:fieldbeam 750"
  check "$r: service enabled (multi-user.target.wants)" test -L "$root/etc/systemd/system/multi-user.target.wants/fieldbeam-edge.service"
  check "$r: the config listens on the LAN for the printed MQTT user, auto-registers the firmware topics" \
    node -e "
      const y = require('module').createRequire('$FB_PI_ROOT/cloud/package.json')('yaml').parse(require('fs').readFileSync('$root/etc/fieldbeam/edge.yaml', 'utf8'));
      const u = (y.mqtt.users || [])[0] || {};
      process.exit(y.mqtt.host === '0.0.0.0' && u.username === '$MQTT_USER' && u.password === '$MQTT_PASS' && y.auto_register.enabled ? 0 : 1)"
  # The seed: in /etc/fieldbeam/edge.nk and in no other file of the Pi (boot partition, cloud-init's
  # copies of the user-data, the install script's temporary files, logs).
  local seed
  seed=$(cat "$root/etc/fieldbeam/edge.nk" 2>/dev/null)
  check "$r: the seed is in /etc/fieldbeam/edge.nk and in no other file of the Pi" \
    bash -c "[[ '$seed' =~ ^SU[A-Z2-7]{56}\$ ]] && [ \"\$(grep -rlF --exclude-dir=proc --exclude-dir=dev '$seed' '$root' | sed 's|^$root||')\" = /etc/fieldbeam/edge.nk ]"
  check "$r: the install link is used up: a second fetch gets 410" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "$INSTALL_URL")" = 410
}
# A device elsewhere on the LAN (its own network namespace) publishes Zigbee2MQTT and Tasmota readings in
# their default topics to the Pi's broker at HOST_ADDR with the printed user and password; the agent
# auto-registers them and they reach Postgres.
device_checks() { # ROUTE EDGE
  local r=$1 edge=$2 ok=0
  device mosquitto_pub -h "$HOST_ADDR" -p "$MQTT_PORT" -u "$MQTT_USER" -P "$MQTT_PASS" -q 1 -i "z2m-$r" \
    -t "zigbee2mqtt/kitchen-$r" -m '{"temperature":21.5,"humidity":40,"linkquality":120}' || ok=1
  device mosquitto_pub -h "$HOST_ADDR" -p "$MQTT_PORT" -u "$MQTT_USER" -P "$MQTT_PASS" -q 1 -i "tasmota-$r" \
    -t "tele/balcony-$r/SENSOR" -m "{\"Time\":\"$(date -u +%FT%T)\",\"AM2301\":{\"Temperature\":12.3,\"Humidity\":70},\"TempUnit\":\"C\"}" || ok=1
  check "$r: a device at $DEVICE_ADDR publishes (QoS 1) to the Pi's broker at $HOST_ADDR:$MQTT_PORT as $MQTT_USER" test "$ok" = 0
  check "$r: the device's Zigbee2MQTT readings in Postgres (temperature, humidity)" \
    pgc --db "$DB" --edge "$edge" --station "kitchen-$r" --count 2
  check "$r: the device's Tasmota readings in Postgres (temperature, humidity)" \
    pgc --db "$DB" --edge "$edge" --station "balcony-$r" --count 2
  check "$r: the device is refused with a wrong password" \
    bash -c "! ip netns exec '$DEVICE_NS' mosquitto_pub -h '$HOST_ADDR' -p '$MQTT_PORT' -u '$MQTT_USER' -P wrong-password -q 1 -t zigbee2mqtt/x -m '{\"temperature\":1}' 2>/dev/null"
}

# ---------------------------------------------------------------------------------------------------
# Route 1: the one-line install, on Raspberry Pi OS as it is (bookworm: no cloud-init), as the Pi owner
# types it. As root: qemu-user's binfmt handler runs without the C flag, so a setuid sudo cannot raise
# a user to root under emulation; `sudo` itself still runs.
pi_time_start route-one-line
edge_add_checks one-line
check "one-line: the rootfs has sudo (Raspberry Pi OS Lite does)" test -x "$root/usr/bin/sudo"
[ -n "$INSTALL_CMD" ] || fail_now "one-line: edge add printed the one-line install"
if pi_chroot sh -c "$INSTALL_CMD" >"$logs/first-boot-line.log" 2>&1; then
  PASSED+=("one-line: curl -fsSL <link> | sudo sh installs the agent from the collector")
else
  tail -30 "$logs/first-boot-line.log" >&2
  fail_now "one-line: curl -fsSL <link> | sudo sh installs the agent from the collector"
fi
first_boot_checks one-line first-boot-line.log
check "one-line: bundled node is arm64 $FB_PI_NODE_VERSION" test "$(pi_chroot /usr/lib/fieldbeam-edge/node/bin/node -p 'process.arch+" "+process.version')" = "arm64 v$FB_PI_NODE_VERSION"

pi_proof_unit
pi_time_start agent-start
start_agent agent-1.log || { tail -20 "$logs/agent-1.log" >&2; fail_now "agent starts from the installed files"; }
AGENT_READY_FIRST_S=$AGENT_READY_S
PASSED+=("agent starts from the installed files (ready in ${AGENT_READY_S}s)")
pi_time_end agent-start
device_checks one-line "$EDGE_ID"

pi_time_start end-to-end
"${HELPER[@]}" publish --host "$HOST_ADDR" --port "$MQTT_PORT" --user "$MQTT_USER" --pass "$MQTT_PASS" --station mqttjs-1 --count 200 \
  >"$logs/publish-mqttjs.json" || fail_now "mqtt.js publishes 200 readings (QoS 1)"
check "mqtt.js readings in Postgres (200)" pgc --db "$DB" --edge "$EDGE_ID" --station mqttjs-1 --count 200
pi_time_end end-to-end

pi_time_start bench
"${HELPER[@]}" publish --host "$HOST_ADDR" --port "$MQTT_PORT" --user "$MQTT_USER" --pass "$MQTT_PASS" --station bench-1 \
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
"${HELPER[@]}" publish --host "$HOST_ADDR" --port "$MQTT_PORT" --user "$MQTT_USER" --pass "$MQTT_PASS" --station outage-1 --count 50 \
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
chroot_sh() { pi_chroot sh -c "$1" >>"$logs/lifecycle.log" 2>&1; }
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
pi_proof_rootfs_done
pi_time_end route-one-line

# ---------------------------------------------------------------------------------------------------
# The user-data routes, on a fresh trixie root (the Raspberry Pi OS releases that run cloud-init). The Pi
# owner's user-data goes where Imager puts it, the boot partition (/boot/firmware); first boot is
# cloud-init's (pi_cloud_init_boot), then the agent starts as its unit does and a device publishes.
user_data_route() { # ROUTE EDGE: after the user-data is in $root/boot/firmware/user-data
  local r=$1 edge=$2
  check "$r: the user-data on the boot partition holds no nkey seed" \
    bash -c "! grep -qE 'SU[A-Z2-7]{56}' '$root/boot/firmware/user-data'"
  if pi_cloud_init_boot "first-boot-$r.log"; then
    PASSED+=("$r: cloud-init's first boot ran ($CLOUD_INIT_KIND)")
  else
    tail -30 "$logs/first-boot-$r.log" >&2
    FAILED+=("$r: cloud-init's first boot ran ($CLOUD_INIT_KIND)")
  fi
  check "$r: the user-data's runcmd fetched the install link and installed the agent" \
    test -x "$root/usr/lib/fieldbeam-edge/bin/fieldbeam-edge"
  first_boot_checks "$r" "first-boot-$r.log"
  check "$r: no nkey seed on the boot partition after first boot" \
    bash -c "! grep -rqE 'SU[A-Z2-7]{56}' '$root/boot/firmware'"
  pi_proof_unit
  start_agent "agent-$r.log" || { tail -20 "$logs/agent-$r.log" >&2; fail_now "$r: agent starts from the installed files"; }
  PASSED+=("$r: agent starts from the installed files (ready in ${AGENT_READY_S}s)")
  device_checks "$r" "$edge"
  check "$r: SIGTERM: agent exits 0" stop_agent
}

pi_time_start route-user-data
pi_edge_add pi-cloud
edge_add_checks user-data
pi_proof_rootfs cloud "$CLOUD_SUITE" "$CLOUD_INCLUDE" "$CLOUD_APT"
install -d "$root/boot/firmware"
install -m 0644 "$USER_DATA" "$root/boot/firmware/user-data"
user_data_route user-data pi-cloud
pi_proof_rootfs_done
pi_time_end route-user-data

# Raspberry Pi Imager's own user-data (user, hostname, time zone, its runcmd), merged by edge add.
pi_time_start route-imager
pi_proof_rootfs imager "$CLOUD_SUITE" "$CLOUD_INCLUDE" "$CLOUD_APT"
install -d "$root/boot/firmware"
install -m 0644 test/pi/fixtures/imager-user-data "$root/boot/firmware/user-data"
pi_edge_add pi-imager --user-data-from "$root/boot/firmware/user-data" --out "$root/boot/firmware/user-data"
edge_add_checks imager
check "imager: the merged user-data keeps Imager's keys and has one runcmd" \
  bash -c "[ \"\$(grep -c '^runcmd:' '$root/boot/firmware/user-data')\" = 1 ] && grep -q '^users:' '$root/boot/firmware/user-data' && grep -q '^hostname: gw-imager' '$root/boot/firmware/user-data'"
user_data_route imager pi-imager
check "imager: Imager's runcmd entries ran (its marker files)" \
  bash -c "test -f '$root/var/lib/imager-proof/runcmd-1' && test -f '$root/var/lib/imager-proof/runcmd-2'"
check "imager: Imager's user (pi, in sudo) and hostname were applied" \
  bash -c "chroot '$root' id -nG pi | grep -qw sudo && [ \"\$(cat '$root/etc/hostname')\" = gw-imager ]"
pi_proof_rootfs_done
pi_time_end route-imager

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
