import type { EdgeStatus } from '@fieldbeam/protocol';
import type pg from 'pg';
import type { DatasetDef } from '../datasets/dataset-config.js';
import type { WindowRow, WindowStore } from '../datasets/window-store.js';
import { windowKey } from '../datasets/windows.js';
import { edgeCompleteness } from '../fleet/completeness.js';
import { FleetStore } from '../fleet/fleet-store.js';
import { type FleetEntry, fleetEntries, fleetEntry, neverSeen } from '../fleet/fleet-view.js';
import type {
  DatasetsAnswer,
  DatasetWindow,
  EdgeAnswer,
  FleetAnswer,
  FleetEdge,
  IssAnswer,
  Point,
  SeriesAnswer,
  StationVariables,
  WindowState,
} from './console-api.js';

/** Bounds of what one console answer reads (rows and time ranges), so that no request is a scan of everything. */
export const consoleBounds = {
  /** Points of one series answer (the newest are kept). */
  seriesPoints: 5000,
  /** How far back a series may reach. */
  seriesMaxAgeMs: 7 * 86_400_000,
  /** Default reach of a series with no `since`. */
  seriesDefaultAgeMs: 3_600_000,
  /** Windows per dataset in the datasets answer (newest first). */
  windowsPerDataset: 100,
  /** Station/variable pairs listed for an edge. */
  stationVariables: 500,
  /** ISS items plotted per edge, and their reach. */
  issItems: 4,
  issAgeMs: 3_600_000,
  issPoints: 500,
  /** How old a reading may be to place an edge on the map, and how often those places are read again (a scan of those minutes). */
  coordsAgeMs: 15 * 60_000,
  coordsRefreshMs: 10_000,
} as const;

export interface ConsoleDataDeps {
  pool: pg.Pool;
  windows: WindowStore;
  datasets: readonly DatasetDef[];
  /** The identity registry's edge ids (`edge add`), as `edge list` reads them. */
  registered: () => string[];
  now?: () => number;
}

/** Reads what the console shows from Postgres, with the same functions the CLI uses. */
export class ConsoleData {
  private readonly store: FleetStore;
  private coords = new Map<string, { lat: number; lon: number }>();
  private coordsAt = 0;
  private coordsReading: Promise<void> | undefined;

  constructor(private readonly deps: ConsoleDataDeps) {
    this.store = new FleetStore(deps.pool);
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Every edge as `edge list --json` has it, with rates and a place. */
  async fleet(): Promise<FleetAnswer> {
    const [rows, rates] = await Promise.all([
      this.store.list(),
      this.deps.pool.query<{ edge: string; i: number | null; o: number | null }>(
        `SELECT edge, (status->'rates'->>'inPerS')::float8 AS i, (status->'rates'->>'outPerS')::float8 AS o
         FROM fleet_edges`,
      ),
      this.refreshCoords(),
    ]);
    const rateOf = new Map(rates.rows.map((r) => [r.edge, r]));
    const edges = fleetEntries(rows, this.deps.registered(), this.now()).map((e) =>
      this.withExtras(e, rateOf.get(e.id)),
    );
    return {
      generatedAt: new Date(this.now()).toISOString(),
      edges,
      online: edges.filter((e) => e.online).length,
    };
  }

  private withExtras(e: FleetEntry, rate: { i: number | null; o: number | null } | undefined): FleetEdge {
    const place = this.coords.get(e.id);
    return {
      ...e,
      inPerS: rate?.i ?? null,
      outPerS: rate?.o ?? null,
      lat: place?.lat ?? null,
      lon: place?.lon ?? null,
    };
  }

  /**
   * Where edges are: the newest reading with coordinates of each, over the last minutes. Read at most
   * every `coordsRefreshMs` (it scans those minutes of readings), shared by every caller meanwhile.
   */
  private refreshCoords(): Promise<void> {
    if (this.now() - this.coordsAt < consoleBounds.coordsRefreshMs) return Promise.resolve();
    this.coordsReading ??= this.deps.pool
      .query<{ edge: string; lat: number; lon: number }>(
        `SELECT DISTINCT ON (edge) edge, lat, lon FROM observations
         WHERE time > now() - make_interval(secs => $1) AND lat IS NOT NULL AND lon IS NOT NULL
         ORDER BY edge, time DESC`,
        [consoleBounds.coordsAgeMs / 1000],
      )
      .then((r) => {
        this.coords = new Map(r.rows.map((x) => [x.edge, { lat: x.lat, lon: x.lon }]));
        this.coordsAt = this.now();
      })
      .finally(() => {
        this.coordsReading = undefined;
      });
    return this.coordsReading;
  }

  /** One edge's registry row and last heartbeat, or undefined for an edge unknown everywhere. */
  async entry(id: string): Promise<{ entry: FleetEdge; status: EdgeStatus | undefined } | undefined> {
    const registered = this.deps.registered().includes(id);
    const [row, rate] = await Promise.all([
      this.store.get(id),
      this.deps.pool.query<{ i: number | null; o: number | null }>(
        `SELECT (status->'rates'->>'inPerS')::float8 AS i, (status->'rates'->>'outPerS')::float8 AS o
         FROM fleet_edges WHERE edge = $1`,
        [id],
      ),
    ]);
    if (!row && !registered) return undefined;
    const entry = row ? fleetEntry(row, registered, this.now()) : neverSeen(id);
    return { entry: this.withExtras(entry, rate.rows[0]), status: row?.status };
  }

  /** The edge page without the central config (the caller reads that from NATS). */
  async edge(id: string): Promise<Omit<EdgeAnswer, 'central'> | undefined> {
    const found = await this.entry(id);
    if (!found) return undefined;
    const { entry, status } = found;
    const [completeness, stations] = await Promise.all([
      edgeCompleteness(this.deps.pool, id),
      this.stations(id),
    ]);
    const sensors = status?.sensors ?? [];
    return {
      edge: entry,
      sensors: {
        local: sensors.filter((s) => s.origin === 'local'),
        central: sensors.filter((s) => s.origin === 'central'),
        auto: sensors.filter((s) => s.origin === 'auto'),
      },
      sensorCount: status?.sensorCount ?? status?.sensors?.length ?? null,
      config: status?.config ?? null,
      iss: status?.iss ?? null,
      completeness: {
        readings: completeness.readings,
        explained: completeness.explained,
        unexplained: completeness.unexplained,
        buffers: completeness.buffers.map((b) => ({
          bufferId: b.bufferId,
          readings: b.readings,
          unexplained: b.unexplained,
          unexplainedRanges: b.unexplainedRanges,
        })),
      },
      stations,
    };
  }

  /** Stations and variables the edge sent readings of in the last day (the plots' choices). */
  private async stations(id: string): Promise<StationVariables[]> {
    const { rows } = await this.deps.pool.query<{
      station: string;
      variable: string;
      unit: string;
      last: Date;
      lat: number | null;
      lon: number | null;
    }>(
      `SELECT station, variable, max(unit) AS unit, max(time) AS last,
              (array_agg(lat ORDER BY time DESC) FILTER (WHERE lat IS NOT NULL))[1] AS lat,
              (array_agg(lon ORDER BY time DESC) FILTER (WHERE lon IS NOT NULL))[1] AS lon
       FROM observations WHERE edge = $1 AND time > now() - interval '1 day'
       GROUP BY station, variable ORDER BY station, variable LIMIT $2`,
      [id, consoleBounds.stationVariables],
    );
    const byStation = new Map<string, StationVariables>();
    for (const r of rows) {
      let s = byStation.get(r.station);
      if (!s) {
        s = { station: r.station, variables: [], lat: null, lon: null };
        byStation.set(r.station, s);
      }
      s.variables.push({ variable: r.variable, unit: r.unit, lastTime: r.last.toISOString() });
      s.lat ??= r.lat;
      s.lon ??= r.lon;
    }
    return [...byStation.values()];
  }

  /** Readings of one station's variable since `since` (bounded: the newest `seriesPoints`). */
  async series(edge: string, station: string, variable: string, since: Date): Promise<SeriesAnswer> {
    const max = consoleBounds.seriesPoints;
    const { rows } = await this.deps.pool.query<{ time: Date; value: number | null; unit: string }>(
      `SELECT time, value, unit FROM observations
       WHERE edge = $1 AND station = $2 AND variable = $3 AND time >= $4
       ORDER BY time DESC LIMIT $5`,
      [edge, station, variable, since, max + 1],
    );
    const truncated = rows.length > max;
    const kept = (truncated ? rows.slice(0, max) : rows).reverse();
    return {
      edge,
      station,
      variable,
      unit: kept.at(-1)?.unit ?? null,
      since: since.toISOString(),
      points: kept.map((r): Point => [r.time.getTime(), r.value]),
      truncated,
    };
  }

  /** Readings newer than `after` (for live plots; at most `seriesPoints`, oldest first). */
  async newReadings(edge: string, station: string, variable: string, after: Date): Promise<Point[]> {
    const { rows } = await this.deps.pool.query<{ time: Date; value: number | null }>(
      `SELECT time, value FROM observations
       WHERE edge = $1 AND station = $2 AND variable = $3 AND time > $4
       ORDER BY time LIMIT $5`,
      [edge, station, variable, after, consoleBounds.seriesPoints],
    );
    return rows.map((r) => [r.time.getTime(), r.value]);
  }

  /** Each dataset's newest windows with their newest version and its download links. */
  async datasetsAnswer(): Promise<DatasetsAnswer> {
    const out: DatasetsAnswer['datasets'] = [];
    for (const def of this.deps.datasets) {
      out.push({
        name: def.name,
        title: def.title ?? null,
        windowS: def.window / 1000,
        windows: await this.datasetWindows(def),
      });
    }
    return { datasets: out };
  }

  async datasetWindows(def: DatasetDef): Promise<DatasetWindow[]> {
    const rows = await this.deps.windows.windows({
      dataset: def.name,
      limit: consoleBounds.windowsPerDataset,
    });
    if (rows.length === 0) return [];
    const starts = rows.map((w) => w.windowStart);
    const [versions, exports] = await Promise.all([
      this.deps.pool.query<{
        window_start: Date;
        version: number;
        rows: string;
        bytes: string;
        built_at: Date;
        provisional: boolean;
      }>(
        `SELECT DISTINCT ON (window_start) window_start, version, rows, bytes, built_at, provisional
         FROM dataset_versions WHERE dataset = $1 AND window_start = ANY($2::timestamptz[])
         ORDER BY window_start, version DESC`,
        [def.name, starts],
      ),
      this.deps.pool.query<{ window_start: Date; version: number; key: string }>(
        `SELECT window_start, version, key FROM dataset_exports
         WHERE dataset = $1 AND window_start = ANY($2::timestamptz[]) AND key IS NOT NULL`,
        [def.name, starts],
      ),
    ]);
    const newest = new Map(versions.rows.map((v) => [v.window_start.getTime(), v]));
    return rows.map((w) => {
      const v = newest.get(w.windowStart.getTime());
      const files = exports.rows.filter(
        (e) => v && e.window_start.getTime() === w.windowStart.getTime() && e.version === v.version,
      );
      const link = (ext: string) =>
        v && files.some((f) => f.key.endsWith(`.${ext}`))
          ? `/collections/${encodeURIComponent(def.name)}/windows/${windowKey(w.windowStart.getTime())}/${v.version}.${ext}`
          : null;
      return {
        start: w.windowStart.toISOString(),
        end: w.windowEnd.toISOString(),
        state: stateOf(w, v?.provisional ?? false),
        version: v?.version ?? null,
        rows: v ? Number(v.rows) : null,
        bytes: v ? Number(v.bytes) : null,
        builtAt: v?.built_at.toISOString() ?? null,
        lastError: w.lastError,
        arrowUrl: link('arrow'),
        geoparquetUrl: link('parquet'),
      };
    });
  }

  /** Edges whose heartbeat has an ISS source, with a few of their ISS items' recent values. */
  async iss(): Promise<IssAnswer> {
    const { rows } = await this.deps.pool.query<{
      edge: string;
      last_seen: Date;
      interval_ms: number | null;
      iss: { state: string; lastUpdateTime: string | null };
    }>(
      `SELECT edge, last_seen, interval_ms, status->'iss' AS iss FROM fleet_edges
       WHERE status ? 'iss' ORDER BY edge`,
    );
    const edges: IssAnswer['edges'] = [];
    for (const r of rows) {
      const entry = await this.entry(r.edge);
      const items = await this.deps.pool.query<{ station: string; variable: string; unit: string }>(
        `SELECT station, variable, max(unit) AS unit FROM observations
         WHERE edge = $1 AND source = 'isslive' AND time > now() - make_interval(secs => $2)
         GROUP BY station, variable ORDER BY station, variable LIMIT $3`,
        [r.edge, consoleBounds.issAgeMs / 1000, consoleBounds.issItems],
      );
      const since = new Date(this.now() - consoleBounds.issAgeMs);
      const plotted = [];
      for (const it of items.rows) {
        const s = await this.series(r.edge, it.station, it.variable, since);
        plotted.push({ ...it, points: s.points.slice(-consoleBounds.issPoints) });
      }
      edges.push({
        edge: r.edge,
        online: entry?.entry.online ?? false,
        state: r.iss.state,
        lastUpdateTime: r.iss.lastUpdateTime,
        items: plotted,
      });
    }
    return { edges };
  }
}

/** The console's window state: a built window whose newest version was built before its grace ended is provisional. */
export function stateOf(w: Pick<WindowRow, 'state' | 'final'>, provisional: boolean): WindowState {
  if (w.state === 'built' && provisional && !w.final) return 'provisional';
  return w.state;
}
