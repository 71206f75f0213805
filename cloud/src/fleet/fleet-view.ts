import type { EdgeStatus } from '@fieldbeam/protocol';
import type { EdgeCompleteness } from './completeness.js';
import type { FleetEdgeRow } from './fleet-store.js';
import { formatAge, isOnline, offlineAfterMs } from './heartbeat.js';

/**
 * A string an edge sent (its heartbeat's version, sensors, errors), as a terminal may show it: every
 * control character (C0 but tab, DEL, C1) and bidi override becomes U+FFFD. Printed raw, an escape
 * sequence would reach the operator's terminal and a newline or override would forge lines.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const UNPRINTABLE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
export const printable = (s: string): string => s.replace(UNPRINTABLE, '\uFFFD');

/** One edge of `edge list --json`: a registered edge never seen has nulls for every figure. */
export interface FleetEntry {
  id: string;
  /** In the identity registry (`edge add`). An edge seen but not registered runs without nkeys. */
  registered: boolean;
  online: boolean;
  /** The stream's time of its latest heartbeat (ISO), or null: never seen. */
  lastSeen: string | null;
  lastSeenAgeS: number | null;
  firstSeen: string | null;
  /** Its heartbeat interval, and how long without one makes it offline. */
  intervalMs: number | null;
  offlineAfterS: number;
  version: string | null;
  uplink: string | null;
  bufferDepth: number | null;
  bufferBytes: number | null;
  bufferCapacityBytes: number | null;
  oldestUnsentAgeS: number | null;
  dropped: number | null;
  rejected: number | null;
  clock: string | null;
  diskFreeBytes: number | null;
  sensors: number | null;
  configRevision: number | null;
}

/** The fleet: the registry's edges and the registered edges never seen, by id. */
export function fleetEntries(
  rows: readonly FleetEdgeRow[],
  registered: readonly string[],
  nowMs: number,
): FleetEntry[] {
  const known = new Set(registered);
  const entries = rows.map((r) => fleetEntry(r, known.has(r.edge), nowMs));
  const seen = new Set(rows.map((r) => r.edge));
  for (const id of known) if (!seen.has(id)) entries.push(neverSeen(id));
  return entries.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function fleetEntry(r: FleetEdgeRow, registered: boolean, nowMs: number): FleetEntry {
  const last = r.lastSeen.getTime();
  return {
    id: r.edge,
    registered,
    online: isOnline(last, r.intervalMs, nowMs),
    lastSeen: r.lastSeen.toISOString(),
    lastSeenAgeS: Math.max(0, Math.round((nowMs - last) / 100) / 10),
    firstSeen: r.firstSeen.toISOString(),
    intervalMs: r.intervalMs,
    offlineAfterS: offlineAfterMs(r.intervalMs) / 1000,
    version: r.version,
    uplink: r.uplink,
    bufferDepth: r.bufferDepth,
    bufferBytes: r.bufferBytes,
    bufferCapacityBytes: r.bufferCapacityBytes,
    oldestUnsentAgeS: r.oldestUnsentAgeS,
    dropped: r.dropped,
    rejected: r.rejected,
    clock: r.clock,
    diskFreeBytes: r.diskFreeBytes,
    sensors: r.sensorCount,
    configRevision: r.configRevision,
  };
}

export function neverSeen(id: string): FleetEntry {
  return {
    id,
    registered: true,
    online: false,
    lastSeen: null,
    lastSeenAgeS: null,
    firstSeen: null,
    intervalMs: null,
    offlineAfterS: offlineAfterMs(null) / 1000,
    version: null,
    uplink: null,
    bufferDepth: null,
    bufferBytes: null,
    bufferCapacityBytes: null,
    oldestUnsentAgeS: null,
    dropped: null,
    rejected: null,
    clock: null,
    diskFreeBytes: null,
    sensors: null,
    configRevision: null,
  };
}

/** Bytes for people: `512 B`, `3.4 MB` (powers of 1000). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

const ageOf = (s: number | null) => (s === null ? '-' : formatAge(s * 1000));

/** `edge list`'s table: one line per edge, columns aligned. */
export function formatFleetTable(entries: readonly FleetEntry[]): string {
  const header = ['ID', 'ONLINE', 'LAST SEEN', 'VERSION', 'BUFFER', 'OLDEST UNSENT', 'SENSORS'];
  const lines = entries.map((e) => [
    e.id,
    e.online ? 'yes' : 'no',
    e.lastSeenAgeS === null ? 'never' : `${ageOf(e.lastSeenAgeS)} ago`,
    e.version === null ? '-' : printable(e.version),
    e.bufferDepth === null
      ? '-'
      : `${e.bufferDepth} (${formatBytes(e.bufferBytes ?? 0)}, ${percent(e.bufferBytes, e.bufferCapacityBytes)})`,
    e.bufferDepth === null ? '-' : ageOf(e.oldestUnsentAgeS),
    e.sensors === null ? '-' : String(e.sensors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const row = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  const online = entries.filter((e) => e.online).length;
  return `${[row(header), ...lines.map(row)].join('\n')}\n${entries.length} edges, ${online} online\n`;
}

function percent(bytes: number | null, capacity: number | null): string {
  if (!bytes || !capacity) return '0%';
  const p = (100 * bytes) / capacity;
  return `${p < 1 ? p.toFixed(1) : Math.round(p)}%`;
}

/**
 * The answer about an edge that cannot be asked: offline (with when it was last seen) or never
 * seen. Said at once instead of waiting for a request to time out.
 */
export function offlineMessage(e: FleetEntry): string {
  if (e.lastSeenAgeS === null)
    return `${e.id} is offline: registered, but it has never sent a heartbeat (is its agent running and connected to NATS?)`;
  return `${e.id} is offline, last seen ${ageOf(e.lastSeenAgeS)} ago (no heartbeat for ${e.offlineAfterS} s makes it offline)`;
}

/** `edge status`: what the edge's heartbeat (or its live answer) says, for people. */
export function formatEdgeStatus(e: FleetEntry, s: EdgeStatus | undefined, live: boolean): string {
  const out: string[] = [];
  const state = e.online ? 'online' : 'offline';
  const seen = e.lastSeenAgeS === null ? 'never seen' : `last heartbeat ${ageOf(e.lastSeenAgeS)} ago`;
  const every = e.intervalMs ? `, every ${e.intervalMs / 1000} s` : '';
  out.push(`edge ${e.id}: ${state} (${seen}${every}; offline after ${e.offlineAfterS} s without one)`);
  if (!e.registered)
    out.push('  not in the identity registry (this NATS server lets it in without its own key)');
  if (!s) return `${out.join('\n')}\n`;
  out.push(live ? '  as the edge answers now:' : '  as of its last heartbeat:');
  const b = s.buffer;
  out.push(
    `  version ${printable(s.version)}, up ${formatAge(s.uptimeS * 1000)}, uplink ${s.uplink}, clock ${s.clock}, disk free ${s.diskFreeBytes === null ? '-' : formatBytes(s.diskFreeBytes)}`,
    `  buffer  ${b.depth} readings, ${formatBytes(b.bytes)} of ${formatBytes(b.capacityBytes)}, oldest unsent ${ageOf(b.oldestUnsentAgeS)}, dropped ${b.dropped}`,
    `  rates   in ${s.rates.inPerS.toFixed(1)}/s, out ${s.rates.outPerS.toFixed(1)}/s; rejected ${s.rejected}`,
  );
  if (s.config) {
    const c = s.config;
    out.push(
      `  central config  ${c.revision === null ? 'none (local sensors only)' : `revision ${c.revision}${c.appliedAt ? ` applied ${c.appliedAt}` : ''}`}${c.error ? `; refused revision ${c.refusedRevision}: ${printable(c.error)}` : ''}`,
    );
  }
  if (s.iss) out.push(`  ISS     ${printable(s.iss.state)}, last update ${s.iss.lastUpdateTime ?? 'never'}`);
  if (s.gaps)
    out.push(`  known gaps  dropped oldest ${s.gaps.droppedOldest}, quarantined ${s.gaps.quarantined}`);
  const sensors = s.sensors ?? [];
  const count = s.sensorCount ?? sensors.length;
  out.push(`  sensors ${count}${sensors.length < count ? ` (${sensors.length} listed)` : ''}`);
  for (const x of sensors) {
    out.push(
      `    ${printable(x.topic)}  ${printable(x.decoder)}  ${x.origin}${x.station ? `  station ${printable(x.station)}` : ''}  last reading ${x.lastReadingTime ?? 'none yet'}`,
    );
  }
  return `${out.join('\n')}\n`;
}

/** `edge status`'s completeness lines: what the collector received of the edge's readings, and what is missing. */
export function formatCompleteness(c: EdgeCompleteness): string {
  const out = [
    `  completeness  ${c.readings} readings received; gaps explained by the edge: dropped oldest ${c.explained.droppedOldest}; unexplained ${c.unexplained}`,
  ];
  for (const b of c.buffers) {
    if (b.unexplained === 0) continue;
    const ranges = b.unexplainedRanges.map(([f, l]) => (f === l ? `${f}` : `${f}-${l}`)).join(', ');
    out.push(
      `    buffer ${printable(b.bufferId ?? '(unnamed)')}: ${b.unexplained} never arrived (sequence ${ranges})`,
    );
  }
  return `${out.join('\n')}\n`;
}
