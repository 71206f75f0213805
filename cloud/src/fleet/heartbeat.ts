import { EdgeStatus, edgeOfStatusSubject } from '@fieldbeam/protocol';

/**
 * Heartbeats missed in a row after which an edge counts as offline: no heartbeat for
 * `MISSED_BEATS × interval` (the interval the edge's last heartbeat announced).
 */
export const MISSED_BEATS = 3;
/** The interval of a heartbeat that does not say its own (older agents): the agent's default. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000;

/**
 * The largest heartbeat read: one with `statusLimits.maxSensors` sensors at their longest fields is
 * about 120 KiB. Larger ones are refused unread, so a batch of them cannot take much memory.
 */
export const MAX_HEARTBEAT_BYTES = 256 * 1024;

/** Why a heartbeat was refused (the `reason` label of the metric). */
export type HeartbeatProblem = 'subject' | 'too_large' | 'json' | 'schema' | 'edge_mismatch';

export type HeartbeatCheck =
  | { ok: true; edge: string; status: EdgeStatus }
  | { ok: false; problem: HeartbeatProblem; reason: string };

const decoder = new TextDecoder('utf-8', { fatal: false });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Every string of a parsed heartbeat as Postgres can keep it (jsonb and text refuse NUL and unpaired
 * surrogates): otherwise one odd sensor topic would fail the registry's whole write, again and again.
 */
function storable<T>(value: T): T {
  if (typeof value === 'string') {
    return value.replaceAll('\u0000', '\uFFFD').replace(LONE_SURROGATE, '\uFFFD') as T;
  }
  if (Array.isArray(value)) return value.map(storable) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storable(k), storable(v)])) as T;
  }
  return value;
}

/**
 * A heartbeat as the registry takes it: JSON, an `EdgeStatus`, and spoken by the edge of its subject
 * (an edge speaks only for itself; NATS permissions already keep an edge to its own subject, this
 * keeps a body naming another edge out of the registry whoever published it).
 */
export function checkHeartbeat(subject: string, data: Uint8Array): HeartbeatCheck {
  const edge = edgeOfStatusSubject(subject);
  if (edge === undefined) {
    return {
      ok: false,
      problem: 'subject',
      reason: `${subject} is not a heartbeat subject (fb.edge.<edge>.status)`,
    };
  }
  if (data.length > MAX_HEARTBEAT_BYTES) {
    return {
      ok: false,
      problem: 'too_large',
      reason: `heartbeat of ${edge} is ${data.length} bytes, over the ${MAX_HEARTBEAT_BYTES} a heartbeat may have`,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(data));
  } catch (err) {
    return {
      ok: false,
      problem: 'json',
      reason: `heartbeat of ${edge} is not JSON: ${(err as Error).message}`,
    };
  }
  const parsed = EdgeStatus.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    return { ok: false, problem: 'schema', reason: `heartbeat of ${edge} is not an EdgeStatus: ${issues}` };
  }
  if (parsed.data.edge !== edge) {
    return {
      ok: false,
      problem: 'edge_mismatch',
      reason: `heartbeat on ${subject} says it is from edge ${JSON.stringify(parsed.data.edge.slice(0, 64))}: an edge speaks only for itself`,
    };
  }
  return { ok: true, edge, status: storable(parsed.data) };
}

/** How long after its last heartbeat an edge counts as offline. */
export function offlineAfterMs(intervalMs: number | null | undefined): number {
  return MISSED_BEATS * (intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS);
}

/** Online: its last heartbeat is younger than `MISSED_BEATS` intervals. Never seen: offline. */
export function isOnline(
  lastSeenMs: number | null | undefined,
  intervalMs: number | null | undefined,
  nowMs: number,
): boolean {
  if (lastSeenMs === null || lastSeenMs === undefined) return false;
  return nowMs - lastSeenMs <= offlineAfterMs(intervalMs);
}

/** An age for people: `12 s`, `3 min`, `5 h`, `2 d` (whole units, rounded down). */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 2 * 3600) return `${Math.floor(s / 60)} min`;
  if (s < 2 * 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}
