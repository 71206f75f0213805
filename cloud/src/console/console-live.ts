import { isSubjectToken } from '@fieldbeam/protocol';
import { HttpError, type RouteContext } from '../http-api.js';
import type { ConsoleEvent, DatasetWindow, FleetEdge } from './console-api.js';
import type { ConsoleData } from './console-data.js';
import { type IngestHealthDeps, ingestHealth } from './ingest-health.js';
import { type DropReason, type SseClient, SseHub, type SseLimits, type SseOrigin } from './sse-hub.js';

/** Series one client may follow (`readings` events). */
export const MAX_SERIES_PER_CLIENT = 20;

export interface Series {
  edge: string;
  station: string;
  variable: string;
}

const seriesKey = (s: Series) => JSON.stringify([s.edge, s.station, s.variable]);

export interface ConsoleLiveDeps {
  data: ConsoleData;
  ingest: IngestHealthDeps;
  hasDatasets: boolean;
  limits: SseLimits;
  /** How often changes are looked for. */
  pushMs: number;
  onClients?: (event: { clients: number; dropped?: DropReason }) => void;
  log?: { warn(obj: object, msg: string): void };
}

/** The series a client asks for: `edge=&station=&variable=` repeated, taken in order. */
export function parseSeries(query: URLSearchParams): Series[] {
  const edges = query.getAll('edge');
  const stations = query.getAll('station');
  const variables = query.getAll('variable');
  if (edges.length !== stations.length || edges.length !== variables.length)
    throw new HttpError(400, 'readings: give edge, station and variable together, once per series');
  if (edges.length > MAX_SERIES_PER_CLIENT)
    throw new HttpError(400, `readings: at most ${MAX_SERIES_PER_CLIENT} series per client`);
  return edges.map((edge, i) => {
    const station = stations[i] as string;
    const variable = variables[i] as string;
    if (!isSubjectToken(edge) || !station || station.length > 200 || !variable || variable.length > 200)
      throw new HttpError(
        400,
        'readings: an edge id, a station and a variable (each at most 200 characters)',
      );
    return { edge, station, variable };
  });
}

/** A fleet row as compared between pushes: its age ticks every second and is left out (the client counts it). */
const rowKey = ({ lastSeenAgeS: _, ...rest }: FleetEdge) => JSON.stringify(rest);

/**
 * The console's live updates: one loop (every `pushMs`, only while a client is connected) reads what
 * changed and pushes it through the hub, which bounds every client. The reading is done once per loop
 * whatever the number of clients: 20 browsers cost what one does, plus the bytes.
 */
export class ConsoleLive {
  readonly hub: SseHub<Series[]>;
  private readonly timer: NodeJS.Timeout;
  private running = false;
  private again = false;
  private ticks = 0;
  private fleetRows = new Map<string, string>();
  private fleetSnapshot: ConsoleEvent<'fleet'> | undefined;
  private windowRows = new Map<string, string>();
  /** Per followed series: the newest reading time pushed. */
  private readonly cursors = new Map<string, number>();

  constructor(private readonly deps: ConsoleLiveDeps) {
    this.hub = new SseHub<Series[]>(deps.limits, deps.onClients);
    this.timer = setInterval(() => this.wake(), deps.pushMs);
    this.timer.unref();
  }

  /**
   * `GET /console/events`: a stream for this client, or 503 when the hub is full or its address has
   * its share (`from`: see SseHub.refusal; an admin always gets one).
   */
  connect(ctx: RouteContext, from: SseOrigin = {}): void {
    const series = parseSeries(ctx.query);
    if (ctx.req.method === 'HEAD') {
      // What a GET would be, without opening a stream that HEAD could never read.
      ctx.res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
      });
      ctx.res.end();
      return;
    }
    // Asked before `add`, which counts the refusal (fb_cloud_console_clients_dropped_total).
    const refused = this.hub.refusal(from);
    const client = this.hub.add(ctx.res, series, from);
    if (!client)
      throw new HttpError(
        503,
        refused === 'address'
          ? `too many live-update streams from ${from.address} (FB_CONSOLE_MAX_CLIENTS_PER_ADDRESS=${this.deps.limits.maxPerAddress}); close a console tab, or log in (an admin always gets one)`
          : `too many live-update clients (FB_CONSOLE_MAX_CLIENTS=${this.deps.limits.maxClients}); try again later`,
      );
    const now = Date.now();
    for (const s of series) if (!this.cursors.has(seriesKey(s))) this.cursors.set(seriesKey(s), now);
    if (this.fleetSnapshot) this.hub.send(client, 'fleet', this.fleetSnapshot);
    else this.wake();
  }

  /** Looks for changes now (a write just happened), or right after the loop running now. */
  wake(): void {
    if (this.hub.size === 0) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    this.tick()
      .catch((err: Error) => this.deps.log?.warn({ err: err.message }, 'console live update failed'))
      .finally(() => {
        this.running = false;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  close(): void {
    clearInterval(this.timer);
    this.hub.close();
  }

  private async tick(): Promise<void> {
    this.ticks++;
    await this.pushFleet();
    await this.pushReadings();
    if (this.deps.hasDatasets) await this.pushDatasets();
    // The ingest figures group dead letters: every fifth loop is often enough for a health page.
    if (this.ticks % 5 === 1) this.hub.broadcast('ingest', await ingestHealth(this.deps.ingest));
  }

  private async pushFleet(): Promise<void> {
    const fleet = await this.deps.data.fleet();
    const next = new Map(fleet.edges.map((e) => [e.id, rowKey(e)]));
    const changed = fleet.edges.filter((e) => this.fleetRows.get(e.id) !== next.get(e.id));
    this.fleetRows = next;
    this.fleetSnapshot = { edges: fleet.edges, online: fleet.online, total: fleet.edges.length };
    if (changed.length > 0)
      this.hub.broadcast('fleet', { edges: changed, online: fleet.online, total: fleet.edges.length });
  }

  private async pushReadings(): Promise<void> {
    const wanted = new Map<string, Series>();
    for (const c of this.hub.list()) for (const s of c.subscription) wanted.set(seriesKey(s), s);
    for (const key of [...this.cursors.keys()]) if (!wanted.has(key)) this.cursors.delete(key);
    for (const [key, s] of wanted) {
      const after = this.cursors.get(key) ?? Date.now();
      const points = await this.deps.data.newReadings(s.edge, s.station, s.variable, new Date(after));
      const last = points.at(-1);
      if (!last) continue;
      this.cursors.set(key, last[0]);
      const event: ConsoleEvent<'readings'> = { ...s, points };
      this.hub.broadcast('readings', event, (c: SseClient<Series[]>) =>
        c.subscription.some((x) => seriesKey(x) === key),
      );
    }
  }

  private async pushDatasets(): Promise<void> {
    const answer = await this.deps.data.datasetsAnswer();
    const next = new Map<string, string>();
    for (const d of answer.datasets) {
      const changed: DatasetWindow[] = [];
      for (const w of d.windows) {
        const key = `${d.name} ${w.start}`;
        const text = JSON.stringify(w);
        next.set(key, text);
        if (this.windowRows.get(key) !== text) changed.push(w);
      }
      if (changed.length > 0) this.hub.broadcast('datasets', { dataset: d.name, windows: changed });
    }
    this.windowRows = next;
  }
}
