/**
 * How live updates join what a page holds: pure functions over the API's shapes, tested on their own
 * (merge.test.ts).
 */
import type { DatasetWindow, FleetEdge, Point } from '../../src/console/console-api.ts';

/** Points kept per plot: a live plot drops its oldest beyond this, so a long-open page stays small. */
export const maxPoints = 2000;

const keepNewest = (points: Point[]): Point[] =>
  points.length > maxPoints ? points.slice(points.length - maxPoints) : points;

/** Appends live points after the newest one held (older or equal times are already there). */
export function appendPoints(held: Point[], incoming: Point[]): Point[] {
  const last = held.length > 0 ? (held[held.length - 1] as Point)[0] : Number.NEGATIVE_INFINITY;
  const fresh = incoming.filter((p) => p[0] > last).sort((a, b) => a[0] - b[0]);
  if (fresh.length === 0) return held;
  return keepNewest(held.concat(fresh));
}

/** Two runs of points as one in time order, each time once (a live point may also be in an answer). */
export function mergePoints(a: Point[], b: Point[]): Point[] {
  const byTime = new Map<number, Point>();
  for (const p of a) byTime.set(p[0], p);
  for (const p of b) byTime.set(p[0], p);
  return keepNewest([...byTime.values()].sort((x, y) => x[0] - y[0]));
}

/** Windows newest first, one per start: a live event's window replaces the one held. */
export function mergeWindows(held: DatasetWindow[], changed: DatasetWindow[]): DatasetWindow[] {
  const byStart = new Map(held.map((w) => [w.start, w]));
  for (const w of changed) byStart.set(w.start, w);
  return [...byStart.values()].sort((a, b) => Date.parse(b.start) - Date.parse(a.start));
}

/** The fleet with the rows of a `fleet` event replacing those of the same edge (new edges added). */
export function mergeFleet(held: FleetEdge[], changed: FleetEdge[]): FleetEdge[] {
  const byId = new Map(held.map((e) => [e.id, e]));
  for (const e of changed) byId.set(e.id, e);
  return [...byId.values()];
}
