import { ConfigState, ControlReject, IssState, SensorState } from '@fieldbeam/protocol';
import { z } from 'zod';

/**
 * The operator console's data: every answer under `/console/api/` and every server-sent event of
 * `/console/events`, as zod schemas with their types. The collector builds its answers with these
 * types and its tests parse the answers with these schemas; the browser app imports the types only.
 *
 * Times are ISO 8601 strings (UTC); ages and durations are seconds; null means "not known" (an edge
 * never seen, a figure an older agent does not send).
 */

const Iso = z.string();

/** Every error answer: the message says what went wrong and what to do. */
export const ApiError = z.object({
  error: z.string(),
  /** Validation failures, one line per field (422 of a sensor refused). */
  reasons: z.array(z.string()).optional(),
});
export type ApiError = z.infer<typeof ApiError>;

/** `GET /console/api/session`: may this browser write? */
export const SessionAnswer = z.object({
  /** FB_ADMIN_TOKEN is set: write actions exist once logged in. Unset: the console is read-only. */
  writable: z.boolean(),
  loggedIn: z.boolean(),
  /** When the session ends (ISO) if logged in. */
  expiresAt: Iso.nullable(),
});
export type SessionAnswer = z.infer<typeof SessionAnswer>;

/** `POST /console/login` body (application/json). */
export const LoginRequest = z.object({ token: z.string().min(1).max(1024) }).strict();
export type LoginRequest = z.infer<typeof LoginRequest>;

/**
 * One edge of the fleet: the same figures `fieldbeam-cloud edge list --json` gives (its FleetEntry),
 * plus the rates and the coordinates for the map.
 */
export const FleetEdge = z.object({
  id: z.string(),
  registered: z.boolean(),
  online: z.boolean(),
  lastSeen: Iso.nullable(),
  lastSeenAgeS: z.number().nullable(),
  firstSeen: Iso.nullable(),
  intervalMs: z.number().nullable(),
  offlineAfterS: z.number(),
  version: z.string().nullable(),
  uplink: z.string().nullable(),
  bufferDepth: z.number().nullable(),
  bufferBytes: z.number().nullable(),
  bufferCapacityBytes: z.number().nullable(),
  oldestUnsentAgeS: z.number().nullable(),
  dropped: z.number().nullable(),
  rejected: z.number().nullable(),
  clock: z.string().nullable(),
  diskFreeBytes: z.number().nullable(),
  sensors: z.number().nullable(),
  configRevision: z.number().nullable(),
  /** Readings per second in (from its sensors) and out (to the collector), as of its last heartbeat. */
  inPerS: z.number().nullable(),
  outPerS: z.number().nullable(),
  /** Where it is, from its stations' newest readings with coordinates; null when none has any. */
  lat: z.number().nullable(),
  lon: z.number().nullable(),
});
export type FleetEdge = z.infer<typeof FleetEdge>;

/** `GET /console/api/fleet`. */
export const FleetAnswer = z.object({
  generatedAt: Iso,
  edges: z.array(FleetEdge),
  online: z.number().int().nonnegative(),
});
export type FleetAnswer = z.infer<typeof FleetAnswer>;

/** A station of an edge with the variables it has readings of (for the edge page's plots). */
export const StationVariables = z.object({
  station: z.string(),
  variables: z.array(z.object({ variable: z.string(), unit: z.string(), lastTime: Iso })),
  lat: z.number().nullable(),
  lon: z.number().nullable(),
});
export type StationVariables = z.infer<typeof StationVariables>;

/** A sensor in the central config (the KV bucket) as stored: the same shape as a YAML sensor. */
export const CentralSensor = z.record(z.string(), z.unknown()).and(z.object({ topic: z.string() }));
export type CentralSensor = z.infer<typeof CentralSensor>;

/** `GET /console/api/edges/:id`. */
export const EdgeAnswer = z.object({
  edge: FleetEdge,
  /** Its sensors by origin as its last heartbeat lists them (at most 200 each heartbeat; `sensorCount` is all). */
  sensors: z.object({
    local: z.array(SensorState),
    central: z.array(SensorState),
    auto: z.array(SensorState),
  }),
  sensorCount: z.number().nullable(),
  /** What the central config holds for this edge (its own key; `all` applies too), with its KV revision. */
  central: z.object({
    revision: z.number().nullable(),
    sensors: z.array(CentralSensor),
    /** The fleet-wide defaults (key `all`). */
    all: z.array(CentralSensor),
    /** Why the stored value is refused by the edges, if it is. */
    invalid: z.string().nullable(),
  }),
  /** The central config revision it applied, or the refusal standing (from its heartbeat). */
  config: ConfigState.nullable(),
  iss: IssState.nullable(),
  completeness: z.object({
    readings: z.number(),
    explained: z.object({ droppedOldest: z.number() }),
    unexplained: z.number(),
    buffers: z.array(
      z.object({
        bufferId: z.string().nullable(),
        readings: z.number(),
        unexplained: z.number(),
        unexplainedRanges: z.array(z.tuple([z.number(), z.number()])),
      }),
    ),
  }),
  /** Stations with readings from this edge in the last day, for plots. */
  stations: z.array(StationVariables),
});
export type EdgeAnswer = z.infer<typeof EdgeAnswer>;

/** `GET /console/api/edges/:id/rejects` (asked of the edge itself; offline -> 409 ApiError). */
export const RejectsAnswer = z.object({
  edge: z.string(),
  rejects: z.array(ControlReject),
});
export type RejectsAnswer = z.infer<typeof RejectsAnswer>;

/** One point of a plot: time (ms since the epoch) and value. */
export const Point = z.tuple([z.number(), z.number().nullable()]);
export type Point = z.infer<typeof Point>;

/** `GET /console/api/edges/:id/series?station=&variable=&since=` (readings in time order, bounded). */
export const SeriesAnswer = z.object({
  edge: z.string(),
  station: z.string(),
  variable: z.string(),
  unit: z.string().nullable(),
  since: Iso,
  points: z.array(Point),
  /** More readings exist in the range than `points` holds (the newest are kept). */
  truncated: z.boolean(),
});
export type SeriesAnswer = z.infer<typeof SeriesAnswer>;

/**
 * `POST /console/api/edges/:id/sensors` body: a sensor as in the edge's YAML (topic, decoder, ...),
 * checked with the edges' own schema; refused -> 422 with `reasons`.
 */
export const AddSensorRequest = z.object({ sensor: z.record(z.string(), z.unknown()) }).strict();
export type AddSensorRequest = z.infer<typeof AddSensorRequest>;

/** The answer of a sensor add or remove: the central key's new revision and its sensors. */
export const SensorsChanged = z.object({
  edge: z.string(),
  revision: z.number().nullable(),
  sensors: z.array(CentralSensor),
  /** false when the remove named a topic the key does not hold (nothing written). */
  changed: z.boolean(),
});
export type SensorsChanged = z.infer<typeof SensorsChanged>;

export const WindowState = z.enum(['waiting', 'due', 'building', 'built', 'provisional', 'failed']);
export type WindowState = z.infer<typeof WindowState>;

/** One dataset window (newest first in an answer). */
export const DatasetWindow = z.object({
  start: Iso,
  end: Iso,
  state: WindowState,
  /** The newest built version, or null: never built. */
  version: z.number().nullable(),
  rows: z.number().nullable(),
  bytes: z.number().nullable(),
  builtAt: Iso.nullable(),
  lastError: z.string().nullable(),
  /** Download links of the newest version (null until built). */
  arrowUrl: z.string().nullable(),
  geoparquetUrl: z.string().nullable(),
});
export type DatasetWindow = z.infer<typeof DatasetWindow>;

/** `GET /console/api/datasets` (each dataset's newest windows, bounded). */
export const DatasetsAnswer = z.object({
  datasets: z.array(
    z.object({
      name: z.string(),
      title: z.string().nullable(),
      /** The window length in seconds. */
      windowS: z.number(),
      windows: z.array(DatasetWindow),
    }),
  ),
});
export type DatasetsAnswer = z.infer<typeof DatasetsAnswer>;

/** `POST /console/api/datasets/:d/windows/:start/rebuild` (`start` ISO); body `{}` (application/json). */
export const RebuildAnswer = z.object({ dataset: z.string(), start: Iso, state: WindowState });
export type RebuildAnswer = z.infer<typeof RebuildAnswer>;

/** `GET /console/api/iss`: each edge whose heartbeat has an ISS source. */
export const IssAnswer = z.object({
  edges: z.array(
    z.object({
      edge: z.string(),
      online: z.boolean(),
      state: z.string(),
      lastUpdateTime: Iso.nullable(),
      /** Recent values of a few ISS items (source `iss`), for a plot. */
      items: z.array(
        z.object({ station: z.string(), variable: z.string(), unit: z.string(), points: z.array(Point) }),
      ),
    }),
  ),
});
export type IssAnswer = z.infer<typeof IssAnswer>;

/** `GET /console/api/ingest`. */
export const IngestAnswer = z.object({
  generatedAt: Iso,
  /** Readings stored per second over the last minute and the last 10 minutes (from Postgres). */
  rates: z.object({ perSLastMinute: z.number(), perSLast10Minutes: z.number() }),
  /** Messages of the observation stream not yet delivered to the ingest consumer, and those in flight. */
  lag: z.object({ pending: z.number().nullable(), ackPending: z.number().nullable() }),
  deadLetters: z.object({
    total: z.number(),
    byReason: z.array(z.object({ reason: z.string(), count: z.number() })),
    newest: z.array(
      z.object({
        id: z.number(),
        at: Iso,
        subject: z.string(),
        reason: z.string(),
        streamSeq: z.number().nullable(),
      }),
    ),
  }),
});
export type IngestAnswer = z.infer<typeof IngestAnswer>;

/**
 * `GET /console/events` (text/event-stream). Query: `edge=ID&station=S&variable=V` (repeatable
 * triples, at most 20) subscribe to `readings`. Events, each `event: <name>` with a JSON `data:`:
 */
export const ConsoleEvents = {
  /**
   * The fleet rows that changed (an edge going offline included), checked every FB_CONSOLE_PUSH_MS;
   * all of them when the stream opens. `lastSeenAgeS` alone changing does not count: count it on from
   * `lastSeen`.
   */
  fleet: z.object({ edges: z.array(FleetEdge), online: z.number(), total: z.number() }),
  /** New readings of a subscribed edge/station/variable. */
  readings: z.object({ edge: z.string(), station: z.string(), variable: z.string(), points: z.array(Point) }),
  /** Windows whose state or version changed. */
  datasets: z.object({ dataset: z.string(), windows: z.array(DatasetWindow) }),
  ingest: IngestAnswer,
} as const;
export type ConsoleEventName = keyof typeof ConsoleEvents;
export type ConsoleEvent<N extends ConsoleEventName> = z.infer<(typeof ConsoleEvents)[N]>;

/** The settings a client can rely on (documented in cloud/README.md, "Operator console"). */
export const consolePaths = {
  api: '/console/api/',
  events: '/console/events',
  login: '/console/login',
  logout: '/console/logout',
} as const;
