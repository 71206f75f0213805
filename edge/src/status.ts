import { statfsSync } from 'node:fs';
import type { EdgeStatus } from '@fieldbeam/protocol';
import type { FullPolicy, OutboxStats } from './outbox/outbox.js';
import type { AutoRegisterStatus } from './sources/auto-register.js';

/** Per-second rate of a monotonically growing count, over the time between two samples. */
export class RateMeter {
  private last: { at: number; count: number } | undefined;
  rate = 0;
  sample(count: number, at = Date.now()): number {
    if (this.last && at > this.last.at) this.rate = ((count - this.last.count) * 1000) / (at - this.last.at);
    this.last = { at, count };
    return this.rate;
  }
}

export function diskFreeBytes(path: string): number | null {
  try {
    const s = statfsSync(path);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

export function buildEdgeStatus(input: {
  edge: string;
  version: string;
  startedMs: number;
  buffer: OutboxStats;
  inPerS: number;
  outPerS: number;
  rejected: number;
  diskFree: number | null;
  uplinkConnected: boolean;
  clock: EdgeStatus['clock'];
  /** The buffer file's id: with it the heartbeat reports the file's known gaps. */
  bufferId?: string;
}): EdgeStatus {
  const now = Date.now();
  return {
    v: 1,
    edge: input.edge,
    time: new Date(now).toISOString(),
    version: input.version,
    uptimeS: Math.round((now - input.startedMs) / 1000),
    buffer: {
      depth: input.buffer.depth,
      bytes: input.buffer.bytes,
      capacityBytes: input.buffer.capacityBytes,
      oldestUnsentAgeS:
        input.buffer.oldestReceivedMs === null ? null : (now - input.buffer.oldestReceivedMs) / 1000,
      dropped: input.buffer.dropped,
    },
    rates: { inPerS: input.inPerS, outPerS: input.outPerS },
    rejected: input.rejected,
    diskFreeBytes: input.diskFree,
    clock: input.clock,
    uplink: input.uplinkConnected ? 'connected' : 'disconnected',
    ...(input.bufferId === undefined
      ? {}
      : {
          bufferId: input.bufferId,
          gaps: { droppedOldest: input.buffer.dropped, quarantined: input.buffer.quarantined },
        }),
  };
}

const mib = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MiB`;

/** One line for `systemctl status` (sd_notify `STATUS=`). */
export function formatStatusLine(s: EdgeStatus): string {
  return (
    `uplink ${s.uplink}, buffer ${s.buffer.depth} readings (${mib(s.buffer.bytes)}), ` +
    `in ${s.rates.inPerS.toFixed(0)}/s, out ${s.rates.outPerS.toFixed(0)}/s, clock ${s.clock}`
  );
}

/** Auto-registered sensors listed by `fieldbeam-edge status`; the rest is counted. */
const LISTED_AUTO_SENSORS = 20;

/** What `/healthz` adds to the heartbeat's buffer: the configured `buffer.policy`. */
export type HealthBuffer = EdgeStatus['buffer'] & { policy?: FullPolicy };

/**
 * What a full buffer does. The drop count lives in the buffer file, so under `block` it only holds
 * readings dropped while the agent ran with `drop_oldest`.
 */
function whenFull(b: HealthBuffer): string {
  if (b.policy === 'block')
    return (
      'block: blocks intake (MQTT acknowledgements wait, sensors back off)' +
      (b.dropped > 0 ? `; ${b.dropped} readings dropped earlier under drop_oldest` : '')
    );
  if (b.policy === 'drop_oldest') return `drop_oldest: ${b.dropped} readings dropped`;
  return `${b.dropped} readings dropped (policy not reported)`;
}

/** The status as a person reads it (`fieldbeam-edge status`), with `/healthz`'s extras when present. */
/** Sensors by origin and the central config applied (`fieldbeam-cloud sensors`), when the agent reports them. */
function sensorLines(s: EdgeStatus): string[] {
  const lines: string[] = [];
  if (s.sensorCount !== undefined) {
    const by = (o: string) => (s.sensors ?? []).filter((x) => x.origin === o).length;
    lines.push(
      `sensors     ${s.sensorCount} (local ${by('local')}, central ${by('central')}, auto ${by('auto')})`,
    );
  }
  const c = s.config;
  if (c) {
    lines.push(
      `central     ${c.revision === null ? 'none applied' : `revision ${c.revision}, applied ${c.appliedAt}`}`,
    );
    if (c.error) lines.push(`  REFUSED revision ${c.refusedRevision}: ${c.error}`);
  }
  return lines;
}

export function formatStatus(
  s: EdgeStatus & { buffer: HealthBuffer; autoRegister?: AutoRegisterStatus },
): string {
  const age = s.buffer.oldestUnsentAgeS;
  const auto = s.autoRegister;
  const autoLines =
    auto === undefined || (!auto.enabled && auto.count === 0)
      ? []
      : [
          `auto sensors ${auto.count} of at most ${auto.maxSensors} (auto_register${auto.enabled ? '' : ' off'})`,
          ...auto.sensors
            .slice(0, LISTED_AUTO_SENSORS)
            .map(
              (a) =>
                `  ${a.topic}  ${a.family}, station ${a.station}, ${a.messages} messages: ${a.variables.join(', ')}`,
            ),
          ...(auto.count > LISTED_AUTO_SENSORS
            ? [`  ... and ${auto.count - LISTED_AUTO_SENSORS} more (/healthz lists all)`]
            : []),
        ];
  return [
    `edge        ${s.edge} (version ${s.version}, up ${s.uptimeS} s)`,
    `uplink      ${s.uplink}`,
    `buffer      ${s.buffer.depth} readings, ${mib(s.buffer.bytes)} of ${mib(s.buffer.capacityBytes)}` +
      (age === null ? '' : `, oldest unsent ${age.toFixed(1)} s`),
    `when full   ${whenFull(s.buffer)}`,
    `rates       in ${s.rates.inPerS.toFixed(1)}/s, out ${s.rates.outPerS.toFixed(1)}/s`,
    `rejected    ${s.rejected} inputs (fieldbeam-edge rejects)`,
    `disk free   ${s.diskFreeBytes === null ? 'unknown' : mib(s.diskFreeBytes)}`,
    `clock       ${s.clock}`,
    ...sensorLines(s),
    ...autoLines,
    '',
  ].join('\n');
}
