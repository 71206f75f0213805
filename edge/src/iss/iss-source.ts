import type { Observation } from '@fieldbeam/protocol';
import { type ItemUpdate, LightstreamerClient, Subscription } from 'lightstreamer-client-node';
import { type ObservationSink, type Origin, type RejectSink, toObservation } from '../readings.js';
import { newTraceId } from '../trace-ids.js';
import { DEFAULT_ISS_ITEMS } from './default-items.js';
import { type IssLog, silentLog } from './iss-log.js';
import { checkIssUpdate, hasSignal, toIssReading } from './iss-reading.js';
import { parseIssTimestamp } from './iss-timestamp.js';
import { issUnit } from './iss-units.js';
import { loadIssCatalogue } from './isslive-catalogue.js';
import { ISS_ADAPTER_SET, ISS_CLOCK_ITEM, ISS_FIELDS, type IssFieldValues } from './isslive-schema.js';
import { createSubmitQueue, type SubmitQueueOptions } from './submit-queue.js';

/**
 * IssSource: ISS telemetry from Lightstreamer's ISSLIVE adapter set, through the real
 * `lightstreamer-client-node`, into the agent's outbox.
 *
 * One MERGE subscription holds every item, the clock `TIME_000001` first. Each item update becomes
 * one observation (`isslive` / `ISS` / `iss:<item>`) timed by its TimeStamp, so a snapshot re-sent
 * after a reconnect yields the same ids; the source also skips such a repeat itself to spare the
 * outbox a write. While the clock reports loss of signal no readings go out: the feed then repeats
 * stale values rather than telemetry.
 */

export type IssSignal = 'unknown' | 'acquired' | 'lost';

export interface IssSourceStatus {
  /** The client's status string: `CONNECTING`, `CONNECTED:WS-STREAMING`, `DISCONNECTED:WILL-RETRY`, … */
  connection: string;
  connected: boolean;
  subscribed: boolean;
  /** From the clock item's Status.Class (`24` = signal). `unknown` until the clock has reported. */
  signal: IssSignal;
  signalClass: string | null;
  /** Item updates received, snapshots included. */
  updates: number;
  /** Receipt time (epoch ms) of the last item update. */
  lastUpdateMs: number | null;
  /** ISS time of the last clock update (epoch ms), to tell a stale feed from a quiet one. */
  lastClockMs: number | null;
  /** Observations the sink has committed. */
  committed: number;
  /** Observations waiting for the sink. */
  queued: number;
  /** Updates not turned into readings because of loss of signal. */
  suppressed: number;
  /** Re-sent readings (same id as the item's latest, e.g. a snapshot after reconnect) not submitted again. */
  duplicates: number;
  /** Updates without a Value. */
  empty: number;
  /** Updates quarantined as unusable (unknown item, unreadable TimeStamp, oversize value). */
  rejected: number;
  /** `submit` calls the sink refused (buffer full). */
  refusals: number;
  /** Readings given up: replaced by a newer one of the same item while the sink refused, or left at close. */
  dropped: number;
  /** Reconnections started by the source itself (after a terminal server error or a stale feed). */
  resets: number;
  lastError: string | null;
}

export interface IssConnectionOptions {
  /** Client `retryDelay` (default 4000 ms). */
  retryDelayMs?: number;
  /** Client `firstRetryMaxDelay` (default 100 ms). */
  firstRetryMaxDelayMs?: number;
  /** Client `sessionRecoveryTimeout` (default 15000 ms); 0 skips recovery and opens a new session. */
  sessionRecoveryTimeoutMs?: number;
  /** Client `stalledTimeout` and `reconnectTimeout` (defaults 2000 / 3000 ms). */
  stalledTimeoutMs?: number;
  reconnectTimeoutMs?: number;
  /** Client forced transport, e.g. `WS-STREAMING` or `HTTP-STREAMING` (default: the client chooses). */
  forcedTransport?: string;
  /**
   * Start over (disconnect + connect) when nothing has arrived for this long, whatever the client's
   * status. The clock ticks every second, so silence this long means the client is stuck, e.g.
   * with WebSocket suspended after a failure, which only a fresh connect clears. Default 5 min.
   */
  staleAfterMs?: number;
  /** Backoff of the source's own reconnects after a terminal server error. Defaults 5 s .. 5 min. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

export interface IssSourceOptions {
  /** Lightstreamer server, e.g. `https://push.lightstreamer.com` or a replay server's `url`. */
  serverUrl: string;
  adapterSet?: string;
  /** Items to subscribe (default {@link DEFAULT_ISS_ITEMS}); `TIME_000001` is always added, first. */
  items?: readonly string[];
  /** Id of this edge agent. */
  edge: string;
  sink: ObservationSink;
  /** Where unusable updates are kept for inspection (the agent's reject table). */
  rejects?: RejectSink;
  log?: IssLog;
  /** Called whenever connection, subscription, signal or an error changes (not on every update). */
  onStatus?: (status: IssSourceStatus) => void;
  /** Also emit the clock item as observations (default false: it is the heartbeat, not telemetry). */
  emitClock?: boolean;
  connection?: IssConnectionOptions;
  queue?: Pick<SubmitQueueOptions, 'maxBatch' | 'maxQueued' | 'retryMinMs' | 'retryMaxMs'>;
  now?: () => number;
  /** Give each item update a new trace-id, carried by its observation (`trace_ids`, default true). */
  traceIds?: boolean;
}

export interface IssSource {
  status(): IssSourceStatus;
  /** Unsubscribes, disconnects and hands what is queued to the sink (bounded wait). Idempotent. */
  close(): Promise<void>;
}

const ORIGIN = { source: 'isslive', station: 'ISS' } as const;

export function createIssSource(opts: IssSourceOptions): IssSource {
  const log = opts.log ?? silentLog;
  const now = opts.now ?? Date.now;
  const conn = opts.connection ?? {};
  const staleAfterMs = conn.staleAfterMs ?? 300_000;
  const reconnectMinMs = conn.reconnectMinMs ?? 5_000;
  const reconnectMaxMs = conn.reconnectMaxMs ?? 300_000;
  const origin: Origin = { ...ORIGIN, edge: opts.edge };
  const traceIds = opts.traceIds ?? true;
  const items = [
    ISS_CLOCK_ITEM,
    ...new Set((opts.items ?? DEFAULT_ISS_ITEMS).filter((i) => i !== ISS_CLOCK_ITEM)),
  ];
  const malformed = items.filter((item) => !/^[A-Za-z0-9_]+$/.test(item));
  if (malformed.length > 0) {
    throw new Error(
      `ISSLIVE item ids are letters, digits and _ (e.g. USLAB000058); not: ${malformed.join(', ')}`,
    );
  }

  const catalogue = loadIssCatalogue();
  const units = new Map(items.map((item) => [item, issUnit(item, catalogue.byId.get(item))]));
  const unknown = items.filter((item) => !catalogue.byId.has(item));
  if (unknown.length > 0) {
    log.warn({ items: unknown }, 'ISSLIVE items not in the catalogue: subscribing anyway, unit "1"');
  }

  const state = {
    connection: 'DISCONNECTED',
    subscribed: false,
    signal: 'unknown' as IssSignal,
    signalClass: null as string | null,
    updates: 0,
    lastUpdateMs: null as number | null,
    lastClockMs: null as number | null,
    suppressed: 0,
    duplicates: 0,
    empty: 0,
    rejected: 0,
    resets: 0,
    lastError: null as string | null,
  };
  /** Id of the latest reading handed to the queue, per item: a repeat of it is skipped. */
  const latestIds = new Map<string, string>();
  let closing = false;
  /** Set around our own disconnect() (it reports DISCONNECTED synchronously), which is no failure. */
  let resetting = false;
  let lastActivityMs = now();
  let reconnectDelay = reconnectMinMs;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let resubscribeTimer: NodeJS.Timeout | undefined;

  const queue = createSubmitQueue({
    sink: opts.sink,
    keyOf: (o: Observation) => o.variable,
    ...opts.queue,
    onRefused: (error, queued) =>
      log.warn(
        { err: error, queued },
        'ISS readings refused by the buffer; keeping the latest per item and retrying',
      ),
  });

  const status = (): IssSourceStatus => {
    const q = queue.stats();
    return {
      ...state,
      connected: state.connection.startsWith('CONNECTED:'),
      committed: q.committed,
      queued: q.queued,
      refusals: q.refusals,
      dropped: q.dropped,
    };
  };
  const report = () => {
    if (opts.onStatus === undefined) return;
    try {
      opts.onStatus(status());
    } catch (error) {
      log.error({ err: error }, 'IssSource onStatus callback threw');
    }
  };

  let client: LightstreamerClient;
  try {
    client = new LightstreamerClient(opts.serverUrl, opts.adapterSet ?? ISS_ADAPTER_SET);
  } catch (error) {
    const why = `${(error as Error).message}; expected http(s)://host[:port]`;
    throw new Error(`ISSLIVE server address "${opts.serverUrl}" is not usable (${why})`, { cause: error });
  }
  const co = client.connectionOptions;
  if (conn.retryDelayMs !== undefined) co.setRetryDelay(conn.retryDelayMs);
  if (conn.firstRetryMaxDelayMs !== undefined) co.setFirstRetryMaxDelay(conn.firstRetryMaxDelayMs);
  if (conn.sessionRecoveryTimeoutMs !== undefined)
    co.setSessionRecoveryTimeout(conn.sessionRecoveryTimeoutMs);
  if (conn.stalledTimeoutMs !== undefined) co.setStalledTimeout(conn.stalledTimeoutMs);
  if (conn.reconnectTimeoutMs !== undefined) co.setReconnectTimeout(conn.reconnectTimeoutMs);
  if (conn.forcedTransport !== undefined) co.setForcedTransport(conn.forcedTransport);

  const onUpdate = (update: ItemUpdate) => {
    const receivedMs = now();
    lastActivityMs = receivedMs;
    state.updates++;
    state.lastUpdateMs = receivedMs;
    const item = update.getItemName();
    // getValue is typed string but yields null for a null field.
    const fields = Object.fromEntries(
      ISS_FIELDS.map((f) => [f, update.getValue(f) as string | null]),
    ) as IssFieldValues;

    if (item === ISS_CLOCK_ITEM) {
      const signal: IssSignal = hasSignal(fields) ? 'acquired' : 'lost';
      state.signalClass = fields['Status.Class'];
      state.lastClockMs = parseIssTimestamp(fields.TimeStamp, receivedMs) ?? state.lastClockMs;
      if (signal !== state.signal) {
        const was = state.signal;
        state.signal = signal;
        const msg = signal === 'lost' ? 'ISS loss of signal: holding readings back' : 'ISS signal acquired';
        log.info({ statusClass: state.signalClass, was }, msg);
        report();
      }
      if (!opts.emitClock) return;
    }
    if (state.signal === 'lost') {
      state.suppressed++;
      return;
    }
    // Each update is a message of its own: its trace starts here.
    const trace = traceIds ? newTraceId() : undefined;
    const problem = checkIssUpdate(item, fields, catalogue.byId, receivedMs);
    if (problem !== undefined) {
      state.rejected++;
      log.warn({ item, reason: problem, trace_id: trace }, 'ISSLIVE update quarantined');
      opts.rejects?.reject({
        source: 'isslive',
        topic: item,
        reason: problem,
        payload: Buffer.from(JSON.stringify(fields).slice(0, 8192)),
      });
      return;
    }
    const reading = toIssReading(item, fields, { unit: units.get(item) ?? '1', nowMs: receivedMs });
    if (reading === undefined) {
      state.empty++;
      return;
    }
    const observation = toObservation(
      trace === undefined ? origin : { ...origin, trace },
      reading,
      receivedMs,
    );
    if (latestIds.get(item) === observation.id) {
      state.duplicates++;
      return;
    }
    latestIds.set(item, observation.id);
    queue.push(observation);
  };

  let subscription: Subscription;
  const subscribe = () => {
    subscription = new Subscription('MERGE', items, [...ISS_FIELDS]);
    subscription.setRequestedSnapshot('yes');
    // MERGE may be throttled by the server unless asked otherwise; every reading counts here. The
    // typings only admit a number, but the client documents and accepts the string "unlimited".
    subscription.setRequestedMaxFrequency('unlimited' as unknown as number);
    subscription.addListener({
      onItemUpdate: (update) => {
        try {
          onUpdate(update);
        } catch (error) {
          log.error(
            { err: error, item: update.getItemName() },
            'ISS update could not be turned into a reading',
          );
        }
      },
      onSubscription: () => {
        state.subscribed = true;
        log.info({ items: items.length }, 'ISSLIVE subscription active');
        report();
      },
      onUnsubscription: () => {
        // Also fired when a session is lost; the client resubscribes on the next one by itself.
        state.subscribed = false;
        report();
      },
      onSubscriptionError: (code, message) => {
        state.subscribed = false;
        state.lastError = `subscription refused (${code}): ${message}`;
        log.error({ code, message }, 'ISSLIVE subscription refused; trying again in 60 s');
        report();
        if (resubscribeTimer !== undefined) return;
        resubscribeTimer = setTimeout(() => {
          resubscribeTimer = undefined;
          if (closing) return;
          try {
            if (subscription.isActive()) client.unsubscribe(subscription);
          } catch (error) {
            log.debug({ err: error }, 'ISSLIVE unsubscribe of the refused subscription');
          }
          subscribe();
        }, 60_000);
      },
    });
    client.subscribe(subscription);
  };

  const connect = () => {
    lastActivityMs = now();
    client.connect();
  };

  client.addListener({
    onStatusChange: (connection) => {
      state.connection = connection;
      log.debug({ connection }, 'ISSLIVE connection');
      if (connection.startsWith('CONNECTED:')) {
        reconnectDelay = reconnectMinMs;
        lastActivityMs = now();
      }
      // DISCONNECTED alone is final for the client (a server error it does not retry, or our own
      // disconnect); the source keeps trying, with backoff.
      if (connection === 'DISCONNECTED' && !closing && !resetting && reconnectTimer === undefined) {
        const delay = reconnectDelay * (0.75 + Math.random() * 0.5);
        reconnectDelay = Math.min(reconnectDelay * 2, reconnectMaxMs);
        log.warn({ delayMs: Math.round(delay) }, 'ISSLIVE disconnected for good by the client; reconnecting');
        reconnectTimer = setTimeout(() => {
          reconnectTimer = undefined;
          if (closing) return;
          state.resets++;
          connect();
        }, delay);
      }
      report();
    },
    onServerError: (code, message) => {
      state.lastError = `server error ${code}: ${message}`;
      log.error({ code, message, serverUrl: opts.serverUrl }, 'ISSLIVE server refused the session');
      report();
    },
  });

  // Watchdog: the client never gives up, but after some failures it keeps retrying a path that
  // cannot work (WebSocket suspended for the life of the connection); a fresh connect clears that.
  const watchdog = setInterval(
    () => {
      if (closing || now() - lastActivityMs < staleAfterMs) return;
      log.warn(
        { silentMs: now() - lastActivityMs, connection: state.connection },
        'ISSLIVE feed stale; reconnecting',
      );
      state.resets++;
      resetting = true;
      client.disconnect();
      resetting = false;
      connect();
    },
    Math.min(staleAfterMs, 30_000),
  );

  subscribe();
  connect();

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      closing = true;
      clearInterval(watchdog);
      clearTimeout(reconnectTimer);
      clearTimeout(resubscribeTimer);
      try {
        if (subscription.isActive()) client.unsubscribe(subscription);
      } catch (error) {
        log.debug({ err: error }, 'ISSLIVE unsubscribe at close');
      }
      client.disconnect();
      await queue.close();
      report();
    })();
    return closed;
  };

  return { status, close };
}
