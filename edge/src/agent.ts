import { mkdirSync } from 'node:fs';
import { parseDuration, subjects } from '@fieldbeam/protocol';
import type { Logger } from 'pino';
import { startBufferThread } from './buffer-thread/thread-outbox.js';
import { createCentralSensors, type MergedSensors } from './central/central-sensors.js';
import { type ClockCheck, startClockMonitor } from './clock.js';
import type { AutoRegisterConfig, EdgeConfig, SensorConfig } from './config.js';
import { startControlService } from './control/control-service.js';
import { type ReloadOutcome, reloadOutcome } from './control/reload.js';
import type { EdgeError } from './errors.js';
import { createJetStreamPublisher, type JetStreamPublisher } from './forward/jetstream-publisher.js';
import { natsOptions, startUplink, uplinkEventsFor, uplinkStateFor } from './forward/uplink.js';
import { startStatusHttp } from './http-server.js';
import { createHttpIntake } from './intake/http-intake.js';
import type { IssSource } from './iss/index.js';
import { issState } from './iss/iss-state.js';
import { createEdgeMetrics } from './metrics.js';
import { openOutbox, outboxEventsFor } from './outbox/open-outbox.js';
import type { Outbox, RejectLog } from './outbox/outbox.js';
import type { MqttSink, ObservationSink, RejectSink } from './readings.js';
import { redactUrl } from './redact.js';
import { type AutoRegisterStatus, AutoRegistry } from './sources/auto-register.js';
import { startEmbeddedBroker } from './sources/embedded-broker.js';
import { MqttAccess } from './sources/mqtt-auth.js';
import { createMqttIngest } from './sources/mqtt-ingest.js';
import { SensorMap } from './sources/sensor-map.js';
import { createTopicObservations } from './sources/topic-observations.js';
import { buildEdgeStatus, diskFreeBytes, RateMeter } from './status.js';
import { version } from './version.js';

export interface EdgeAgent {
  readonly edge: string;
  /** The port sensors connect to (embedded broker), or undefined in external mode. */
  readonly mqttPort: number | undefined;
  readonly httpPort: number;
  readonly outbox: Outbox;
  /**
   * Replaces the sensor mappings without touching connections or the buffer (SIGHUP). With
   * `autoRegister`, its settings too; auto-registered sensors are kept or dropped as
   * `AutoRegistry.reconfigure` says.
   */
  reloadSensors(sensors: readonly SensorConfig[], autoRegister?: AutoRegisterConfig): ReloadOutcome;
  /**
   * Reads the config file again (`opts.loadConfig`) and applies its sensors: SIGHUP and the control
   * service's reload. Throws (EdgeConfigError) when the file is refused; the running sensors stay.
   */
  reload(): ReloadOutcome;
  status(): ReturnType<typeof buildEdgeStatus>;
  /** Sensors made by `auto_register`. */
  autoRegistered(): AutoRegisterStatus;
  /**
   * For the systemd watchdog: false once the agent is stopping or when its buffer no longer
   * answers a query (an I/O error from a failing SD card). An unreachable uplink is not a fault:
   * buffering through it is the agent's job.
   */
  alive(): boolean;
  /** Stops intake, flushes the buffer to disk, waits for in-flight publishes, closes connections. Idempotent. */
  close(): Promise<void>;
}

/** Starts the edge agent: buffer, uplink, forwarder, MQTT intake, status. Resources close in reverse order. */
export async function createEdgeAgent(
  config: EdgeConfig,
  log: Logger,
  opts: {
    loadConfig?: () => EdgeConfig;
    /**
     * The buffer thread failed (`forward.thread`): nothing is stored or sent any more, and every append
     * waiting on it was refused. Default: the process exits with status 1 (systemd starts it again).
     */
    onFatal?: (err: EdgeError) => void;
    /** Replaces the buffer thread's program (tests make threads that fail). */
    bufferThreadScript?: URL;
  } = {},
): Promise<EdgeAgent> {
  const parts: ShutdownParts = { pollers: [], intake: [], buffer: [], connection: [] };
  const closers = parts.intake;
  let closing: Promise<void> | undefined;
  const startedMs = Date.now();
  const metrics = createEdgeMetrics();
  try {
    // The buffer holds every reading: the folder is the agent's alone (see the buffer's file modes).
    mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
    const capacityBytes = effectiveCapacity(config.buffer.capacity_bytes, diskFreeBytes(config.data_dir));
    if (capacityBytes < config.buffer.capacity_bytes) {
      log.warn(
        { configured: config.buffer.capacity_bytes, capacityBytes },
        'buffer capacity lowered to what the disk has free (less a reserve)',
      );
    }
    const outboxEvents = outboxEventsFor(metrics, log);
    const uplinkEvents = uplinkEventsFor(metrics, log);
    const onUplinkState = uplinkStateFor(metrics, log);
    let outbox: Outbox;
    /** The agent's NATS connection: heartbeats, control, central config (and, on one thread, the forwarder). */
    let publisher: JetStreamPublisher;
    if (config.forward.thread) {
      // The buffer file and the forwarder on a thread of their own (see buffer-worker.ts for why).
      const onFatal =
        opts.onFatal ??
        (() => {
          process.exit(1);
        });
      const threaded = await startBufferThread(
        config,
        capacityBytes,
        {
          outbox: outboxEvents,
          uplink: uplinkEvents,
          onFatal: (err) => {
            log.fatal(
              { err: err.message, code: err.code },
              'BUFFER THREAD FAILED: the agent stops (its service manager starts it again); nothing was acknowledged that is not on disk',
            );
            onFatal(err);
          },
          onCloseIncomplete: (detail) =>
            log.warn(
              { detail },
              'buffer thread stopped before it finished closing: what it acknowledged is on disk, what stayed unsent is sent after the restart',
            ),
        },
        opts.bufferThreadScript ? { script: opts.bufferThreadScript } : {},
      );
      outbox = threaded;
      metrics.observeBufferThreadHeap(() => threaded.threadHeap());
      parts.buffer.push(() => threaded.close());
      publisher = createJetStreamPublisher({ ...natsOptions(config), onState: onUplinkState });
      parts.connection.push(() => publisher.close());
    } else {
      const local = openOutbox(config, capacityBytes, outboxEvents);
      outbox = local;
      const uplink = startUplink(config, local, uplinkEvents, {
        ...natsOptions(config),
        onState: onUplinkState,
      });
      publisher = uplink.publisher;
      // As on the buffer thread: the batches in flight for a bounded time, the file (committing what
      // is queued), then the connection.
      parts.buffer.push(async () => {
        await uplink.stopSending();
        await local.close();
        await uplink.close();
      });
    }
    // /metrics reads the buffer's depth and oldest unsent reading when scraped, as /healthz does.
    metrics.observeBuffer(() => outbox.stats());
    log.info(
      { bufferId: outbox.bufferId, depth: outbox.stats().depth, thread: config.forward.thread },
      'buffer open',
    );

    const clock = await startClockMonitor(
      config.clock.sync_check as ClockCheck,
      config.clock.check_interval_ms,
      (state, previous) => {
        log.info({ state, previous }, 'wall clock state changed');
        if (state === 'synced' && previous === 'unsynced') {
          outbox.restampUnsynced().then(
            (n) => {
              if (n > 0) log.info({ restamped: n }, 'readings taken before the clock synced were re-stamped');
            },
            (err: Error) => log.warn({ err: err.message }, 'readings could not be re-stamped'),
          );
        }
      },
    );
    closers.push(async () => clock.close());
    if (clock.state === 'unsynced')
      log.warn('wall clock not synchronised: readings are flagged clock_unsynced');

    // The YAML's sensors merged with the central config (KV fb_sensors) last applied, kept in data_dir.
    let localAuto = config.auto_register;
    const central = createCentralSensors({
      edge: config.edge,
      dataDir: config.data_dir,
      local: { sensors: config.sensors, autoRegister: localAuto },
      log: log.child({ central_config: true }),
      metrics,
      pollMs: config.central_poll_ms,
    });
    const autoLog = log.child({ auto_register: true });
    const autoRegistry = new AutoRegistry(central.merged().autoRegister, {
      registered: (s, count) => {
        metrics.autoRegistered.set(count);
        autoLog.info(
          { topic: s.topic, family: s.family, station: s.station, variables: s.variables },
          'auto-registered a sensor for an unmatched topic',
        );
      },
      skipped: (reason, topic, detail) => {
        metrics.autoRegisterSkipped.inc({ reason });
        autoLog.debug({ topic, reason, detail }, 'unmatched topic not auto-registered');
      },
      full: (max) =>
        autoLog.warn(
          { max_sensors: max },
          'auto_register.max_sensors reached: further unmatched topics are counted and skipped',
        ),
    });
    if (autoRegistry.enabled)
      autoLog.info(
        { topics: config.auto_register.topics, max_sensors: config.auto_register.max_sensors },
        'auto_register on: unmatched topics with numeric payloads become sensors',
      );
    let autoSettings = central.merged().autoRegister;
    let sensorMap = new SensorMap(central.merged().sensors, autoRegistry);
    const sink: ObservationSink = { submit: (obs) => outbox.append(obs) };
    const rejectLog: RejectLog = outbox;
    const rejects: RejectSink = {
      reject: (e) =>
        rejectLog.recordReject(e).catch((err: Error) => {
          log.warn({ err: err.message, topic: e.topic }, 'a rejected input could not be kept');
        }),
    };
    const mqttSink: MqttSink = {
      submit: (obs, delivery, retained) => outbox.appendOnce(obs, delivery, retained),
    };
    const ingest = createMqttIngest({
      edge: config.edge,
      traceIds: config.trace_ids,
      sensors: () => sensorMap,
      sink: mqttSink,
      rejects,
      metrics,
      log,
      maxPayloadBytes: config.mqtt.max_packet_bytes,
      maxReadingsPerMessage: config.mqtt.max_readings_per_message,
      clockUnsynced: () => clock.state === 'unsynced',
      acceptedTime: {
        maxAgeMs: parseDuration(config.mqtt.accepted_time.max_age),
        maxFutureMs: parseDuration(config.mqtt.accepted_time.max_future),
      },
    });
    let mqttPort: number | undefined;
    let onReload = () => {};
    let mqttState = () => ({ mode: 'embedded' as string, ready: true });
    if (config.mqtt.mode === 'embedded') {
      const access = new MqttAccess(config.mqtt.users);
      const host = config.mqtt.host ?? (access.enabled ? '0.0.0.0' : '127.0.0.1');
      if (!access.enabled) {
        log.warn(
          { host },
          config.mqtt.host
            ? 'no MQTT users configured: anyone who reaches this address may publish'
            : 'no MQTT users configured: the embedded broker listens on loopback only (add mqtt.users to open it)',
        );
      }
      const broker = await startEmbeddedBroker(
        {
          host,
          port: config.mqtt.port,
          maxPacketBytes: config.mqtt.max_packet_bytes,
          maxConnectBytes: config.mqtt.max_connect_bytes,
          maxPendingConnections: config.mqtt.max_pending_connections,
          connectTimeoutMs: config.mqtt.connect_timeout_ms,
          maxRetained: config.mqtt.max_retained,
          maxRetainedBytes: config.mqtt.max_retained_bytes,
        },
        { ingest, access, metrics, log },
      );
      mqttPort = broker.port;
      closers.push(() => broker.close());
    } else {
      const { startExternalSubscriber } = await import('./sources/external-subscriber.js');
      const sub = await startExternalSubscriber(
        config.mqtt.url ?? '',
        `fieldbeam-edge-${config.edge}`,
        () => sensorMap.filters(),
        ingest,
        log,
      );
      closers.push(() => sub.close());
      onReload = () => sub.refresh();
      mqttState = () => ({ mode: 'external', ready: sub.subscribed });
    }

    let iss: IssSource | undefined;
    if (config.iss.enabled) {
      // Loaded only when used: the Lightstreamer client alone adds ~20 MB to the agent's memory.
      const { createIssSource } = await import('./iss/index.js');
      const source = createIssSource({
        serverUrl: config.iss.server_url,
        adapterSet: config.iss.adapter_set,
        ...(config.iss.items.length > 0 ? { items: config.iss.items } : {}),
        edge: config.edge,
        traceIds: config.trace_ids,
        sink,
        rejects,
        log: log.child({ source: 'isslive' }),
      });
      iss = source;
      closers.push(() => source.close());
      log.info({ url: redactUrl(config.iss.server_url) }, 'ISS telemetry source started');
    }

    const inRate = new RateMeter();
    const outRate = new RateMeter();
    const rejectedTotal = async () => (await metrics.rejected.get()).values.reduce((s, v) => s + v.value, 0);
    let rejectedCount = 0;
    const heartbeatStatus = () =>
      buildEdgeStatus({
        edge: config.edge,
        version,
        startedMs,
        buffer: outbox.stats(),
        inPerS: inRate.rate,
        outPerS: outRate.rate,
        rejected: rejectedCount,
        diskFree: diskFreeBytes(config.data_dir),
        uplinkConnected: publisher.connected,
        clock: clock.state,
        bufferId: outbox.bufferId,
      });
    const status = () => ({
      ...heartbeatStatus(),
      ...(iss ? { iss: issState(iss.status()) } : {}),
      config: central.configState(),
      ...central.sensorStates(sensorMap.states(), autoRegistry.status()),
    });
    const sample = async () => {
      const s = outbox.stats();
      inRate.sample(s.appended);
      outRate.sample(s.acked);
      rejectedCount = await rejectedTotal();
      metrics.depth.set(s.depth);
      metrics.bytes.set(s.bytes);
      metrics.uplink.set(publisher.connected ? 1 : 0);
    };
    const heartbeat = setInterval(() => {
      void sample().then(() => {
        // The interval tells the collector when this edge counts as offline (a few missed beats).
        const beat = { ...status(), intervalMs: config.status_interval_ms };
        publisher.publishStatus(subjects.edgeStatus(config.edge), Buffer.from(JSON.stringify(beat)));
      });
    }, config.status_interval_ms);
    heartbeat.unref();
    parts.pollers.push(async () => clearInterval(heartbeat));

    const health = () => {
      const s = status();
      return {
        ok: true,
        ...s,
        // Not in the heartbeat: `fieldbeam-edge status` says what a full buffer does.
        buffer: { ...s.buffer, policy: config.buffer.policy },
        mqtt: {
          ...mqttState(),
          duplicates: outbox.duplicateDeliveries,
          retainedRepeats: outbox.retainedRepeatDeliveries,
        },
        autoRegister: autoRegistry.status(),
        // The source's own figures beside the heartbeat's state and last update.
        ...(iss ? { iss: { ...iss.status(), ...s.iss } } : {}),
      };
    };
    const intake = config.http_intake.enabled
      ? createHttpIntake({
          config: config.http_intake,
          traceIds: config.trace_ids,
          // The MQTT path's topic matching and decoding, so a POST makes the observations a publish would.
          decodeTopic: createTopicObservations(
            {
              edge: config.edge,
              sensors: () => sensorMap,
              metrics,
              maxReadingsPerMessage: config.mqtt.max_readings_per_message,
              clockUnsynced: () => clock.state === 'unsynced',
              acceptedTime: {
                maxAgeMs: parseDuration(config.mqtt.accepted_time.max_age),
                maxFutureMs: parseDuration(config.mqtt.accepted_time.max_future),
              },
            },
            'http',
          ),
          // Refused at once while full under `block`: the client is answered 429, not held.
          sink: { submit: (obs) => outbox.appendOrRefuse(obs) },
          rejects,
          metrics,
          log: log.child({ http_intake: true }),
        })
      : undefined;
    const http = await startStatusHttp(
      {
        ...config.http,
        ...(intake && {
          intake,
          // A body may take up to body_timeout_ms after its headers.
          limits: { requestTimeoutMs: Math.max(10_000, config.http_intake.body_timeout_ms + 5_000) },
        }),
      },
      metrics.registry,
      health,
    );
    if (intake) {
      log.info(
        { host: config.http.host, port: http.port, clients: Object.keys(config.http_intake.tokens) },
        'http intake on: POST /ingest/<topic>',
      );
      if (!isLoopback(config.http.host))
        log.warn(
          { host: config.http.host },
          'http intake listens beyond loopback over plain HTTP: its tokens travel in clear unless a TLS reverse proxy is in front (edge README, HTTP intake)',
        );
    }
    closers.push(() => http.close());

    let localSensors: readonly SensorConfig[] = config.sensors;
    let auto = { kept: 0, dropped: 0 };
    // Replaces the mappings without touching connections or the buffer: the YAML's (SIGHUP, reload)
    // and the central config's changes both come here, merged.
    const applySensors = (merged: MergedSensors) => {
      const next = new SensorMap(merged.sensors, autoRegistry, sensorMap);
      autoSettings = merged.autoRegister;
      auto = autoRegistry.reconfigure(autoSettings, (topic) => next.route(topic) !== undefined);
      metrics.autoRegistered.set(autoRegistry.size);
      sensorMap = next;
      onReload();
    };
    central.watch(() => publisher.connection(), applySensors);
    parts.pollers.push(() => central.close());
    const reloadSensors = (sensors: readonly SensorConfig[], autoRegister?: AutoRegisterConfig) => {
      localAuto = autoRegister ?? localAuto;
      central.setLocal({ sensors, autoRegister: localAuto });
      const outcome = reloadOutcome(localSensors, sensors, auto);
      localSensors = sensors;
      log.info(
        {
          sensors: sensors.length,
          autoRegistered: auto.kept,
          autoDropped: auto.dropped,
          changes: outcome.changes,
        },
        'sensor mappings reloaded',
      );
      return outcome;
    };
    const reload = () => {
      if (!opts.loadConfig)
        throw new Error('this agent was started without a config file, so there is nothing to reload');
      const next = opts.loadConfig();
      return reloadSensors(next.sensors, next.auto_register);
    };

    // Answers the collector's requests (fb.ctl.<edge>.*) once the uplink is connected.
    const control = startControlService(
      publisher.connection(),
      {
        edge: config.edge,
        version,
        startedMs,
        status: health,
        sensors: () => central.sensorStates(sensorMap.states(), autoRegistry.status(), Infinity).sensors,
        rejects: (limit) => outbox.listRejects(limit),
        reload,
      },
      { log: log.child({ control: true }), requests: metrics.controlRequests },
    );
    parts.pollers.push(() => control.close());

    return {
      edge: config.edge,
      mqttPort,
      httpPort: http.port,
      outbox,
      reloadSensors,
      reload,
      status,
      autoRegistered: () => autoRegistry.status(),
      alive() {
        if (closing) return false;
        try {
          outbox.stats();
          return true;
        } catch {
          return false;
        }
      },
      close() {
        closing ??= shutdown(parts, log);
        return closing;
      },
    };
  } catch (err) {
    await shutdown(parts, log);
    throw err;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** Disk kept free for the OS and SQLite's WAL beyond the buffer bound. */
const DISK_RESERVE = 64 * 1024 * 1024;

/** The configured capacity, but never more than the disk can hold beside what is already there. */
export function effectiveCapacity(configured: number, diskFree: number | null): number {
  if (diskFree === null) return configured;
  // A nearly full disk still gets a small buffer: losing the agent would lose more.
  return Math.min(configured, Math.max(16 * 1024 * 1024, diskFree - DISK_RESERVE));
}

type Closer = () => Promise<void>;

/** What the agent closes, by when in the shutdown. */
interface ShutdownParts {
  /** What polls or answers over NATS (central config, control): stopped at once, each bounded. */
  pollers: Closer[];
  /** Sources, status HTTP, heartbeats, clock: closed in reverse order of their start. */
  intake: Closer[];
  /** The buffer (on its thread, with its uplink): after intake, beside the pollers. */
  buffer: Closer[];
  /** The main thread's NATS connection (drained for a bounded time): once the pollers are done. */
  connection: Closer[];
}

/**
 * Stops the agent so that a SIGTERM loses nothing acknowledged, even through a blackholed uplink:
 * the pollers stop at the start, intake stops (its appends in progress are still answered), then the
 * buffer commits what is queued while the connections drain, each for a bounded time (see
 * `close-bound.ts`), so the whole stays well within the safety stop in `run-command.ts`.
 */
async function shutdown(parts: ShutdownParts, log: Logger): Promise<void> {
  const run = async (close: Closer) => {
    try {
      await close();
    } catch (err) {
      log.error({ err }, 'error while closing');
    }
  };
  const pollers = Promise.all(parts.pollers.map(run));
  for (const close of parts.intake.reverse()) await run(close);
  await Promise.all([...parts.buffer.map(run), pollers.then(() => Promise.all(parts.connection.map(run)))]);
}
