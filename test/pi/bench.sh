#!/usr/bin/env bash
# The emulated Raspberry Pi for `pnpm bench pi` (bench/src/pi.ts runs this; it is not meant to be run alone).
# Sets up what test/pi/emulation.sh proves (test/pi/proof-lib.sh: the build, nats-server, the collector
# serving the release, the arm64 rootfs, first boot installing the .deb, the agent started as its unit
# does), then hands over: one JSON line {"type":"ready",...} on stdout with the agent's MQTT address, pid and
# the release sizes. It waits for a line "stop" (or the end of stdin), stops the agent with SIGTERM
# ({"type":"stopped"}), and takes everything down ({"type":"cleanup"}). All other output goes to stderr.
# The agent's config is the one `fieldbeam-cloud edge add --sensor bench/+station/env=json` provisions (the
# same topic and load as `pnpm bench edge`); first boot runs its user-data. Needs root.
set -euo pipefail
exec 8>&1 1>&2
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/pi/lib.sh"
EDGE_ID=pi-bench
source "$FB_PI_ROOT/test/pi/proof-lib.sh"
cd "$FB_PI_ROOT"

# The benchmark's JSON sensor, given to edge add (its numeric fields become variables).
EDGE_ADD_ARGS=(--sensor 'bench/+station/env=json')

pi_proof_report() {
  local rc=$1
  node -e 'const [rc, cleanup, ...failed] = process.argv.slice(1);
console.log(JSON.stringify({ type: "cleanup", ok: failed.length === 0, exit: Number(rc), cleanup, failed }));' \
    "$rc" "$FB_PI_CLEANUP" "${FAILED[@]}" >&8
  echo "[pi] cleanup: $FB_PI_CLEANUP"
  [ ${#FAILED[@]} -eq 0 ] || return 1
  return "$rc"
}

pi_proof_begin bench
pi_proof_host
pi_proof_build
pi_proof_network
pi_proof_services
pi_proof_rootfs
pi_proof_collector_ready
pi_proof_first_boot "$USER_DATA" first-boot.log || {
  tail -30 "$logs/first-boot.log" >&2
  fail_now "first boot installs the agent"
}
pi_proof_unit
pi_time_start agent-start
start_agent agent.log || {
  tail -20 "$logs/agent.log" >&2
  fail_now "agent starts from the installed files"
}
pi_time_end agent-start

installed_kb=$(du -sk "$root/usr/lib/fieldbeam-edge" | cut -f1)
node -e '
const [release, ...rest] = process.argv.slice(1);
const r = require(release);
const [pid, host, mqttPort, user, pass, httpPort, collector, db, edge, installedKb, readyS, qemuCpu, node, times] = rest;
console.log(JSON.stringify({
  type: "ready", agentPid: Number(pid), mqttUrl: `mqtt://${user}:${pass}@${host}:${mqttPort}`,
  agentHttp: `http://127.0.0.1:${httpPort}`, collectorUrl: collector, databaseUrl: db, edge,
  release: r, installedBytes: Number(installedKb) * 1024, agentReadySeconds: Number(readyS), qemuCpu,
  node, setupSeconds: Object.fromEntries(times.split(" ").filter(Boolean).map((kv) => [kv.split("=")[0], Number(kv.split("=")[1])])),
}));' "$release" "$AGENT_PID" "$HOST_ADDR" "$MQTT_PORT" "$MQTT_USER" "$MQTT_PASS" "$AGENT_HTTP" "$COLLECTOR_URL" "$DB" "$EDGE_ID" \
  "$installed_kb" "$AGENT_READY_S" "$QEMU_CPU_MODEL" "$FB_PI_NODE_VERSION" "${FB_PI_TIMES[*]}" >&8

# The parent measures; "stop" or the end of stdin ends it.
while IFS= read -r line; do
  [ "$line" = stop ] && break
done
if stop_agent; then stopped_ok=true; else stopped_ok=false; fi
printf '{"type":"stopped","cleanExit":%s}\n' "$stopped_ok" >&8
