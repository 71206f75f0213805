import { createServer, type Server, type Socket } from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Logger } from 'pino';
import { createLogThrottle } from '../log-throttle.js';
import type { EdgeMetrics } from '../metrics.js';
import type { MqttAccess } from './mqtt-auth.js';
import { ConnectionDeliveries } from './mqtt-delivery.js';
import { type FrameRefusal, MqttFrameGate, screenSocket } from './mqtt-frame-gate.js';
import type { IngestOutcome, MqttIngest } from './mqtt-ingest.js';
import { RetainedBudget } from './mqtt-retained.js';

export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  /** `mqtt.max_packet_bytes`: the largest payload a message may carry. */
  maxPacketBytes: number;
  /** `mqtt.max_connect_bytes`: the largest packet before a client's login is accepted. */
  maxConnectBytes: number;
  maxPendingConnections: number;
  connectTimeoutMs: number;
  maxRetained: number;
  maxRetainedBytes: number;
}

export interface EmbeddedBroker {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Room for what a PUBLISH carries besides its payload (topic of up to 65,535 bytes, its length,
 * the packet id): a payload a little over `max_packet_bytes` still arrives, and is rejected and
 * recorded as `oversized` by the ingest, so the sensor is told (acknowledged) and moves on.
 */
const PUBLISH_HEADER_ALLOWANCE = 65_536 + 8;

/** aedes' own errors for PUBLISH topics it refuses before asking `authorizePublish`. */
const AEDES_TOPIC_ERRORS: [RegExp, Refusal][] = [
  [/^[#+] is not allowed in PUBLISH$/, 'wildcard_topic'],
  [/^empty topic not allowed in PUBLISH$|^topic has too many levels$/, 'invalid_topic'],
];

type Refusal =
  | FrameRefusal['reason']
  | 'pending_limit'
  | 'connect_timeout'
  | 'client_id_taken'
  | 'invalid_topic'
  | 'sys_topic'
  | 'wildcard_topic';

/**
 * A topic that is not the UTF-8 MQTT requires [MQTT-1.5.3-1] reaches us decoded with U+FFFD for each
 * bad byte sequence (mqtt-packet decodes without checking), and U+0000 is forbidden [MQTT-1.5.3-2].
 */
const invalidTopic = (topic: string) => topic.includes('\u0000') || topic.includes('\uFFFD');

/** At most one warning per reason in this interval; the counter has every refusal. */
const WARN_INTERVAL_MS = 10_000;

/**
 * The MQTT broker sensors connect to. A QoS 1 PUBACK goes out only after `ingest` has committed
 * the readings: aedes sends it once `authorizePublish` calls back, so holding that callback is
 * what ties the sensor's acknowledgement to the disk. If the PUBACK is lost after the commit (kill -9,
 * a dropped connection), the sensor sends the message again: the outbox recognises it by client id,
 * packet id and content (see `ConnectionDeliveries`) and it is acknowledged without a second copy.
 *
 * Bounded against clients that are hostile or broken: packet sizes are checked from the fixed
 * header before a body is read (`MqttFrameGate`), with a tighter limit until the login is accepted;
 * connections not logged in are limited in number and time; a client id held by a connected client
 * of one user cannot be taken over by another user; retained messages are kept only for topics a
 * sensor takes, within a count and a byte budget. Every refusal is counted in
 * `fb_edge_mqtt_refused_total` by reason.
 */
export async function startEmbeddedBroker(
  opts: EmbeddedBrokerOptions,
  deps: { ingest: MqttIngest; access: MqttAccess; metrics: EdgeMetrics; log: Logger },
): Promise<EmbeddedBroker> {
  const { ingest, access, metrics, log } = deps;
  const broker = await Aedes.createBroker({ drainTimeout: 30_000, connectTimeout: opts.connectTimeoutMs });
  /** Connected clients by id (aedes keeps this map; it is not in its types). */
  const live = (broker as unknown as { clients: Record<string, Client | undefined> }).clients;
  /** The authenticated user of each connection. */
  const users = new WeakMap<object, string | undefined>();
  /** Per connection (an aedes client object lives as long as its connection). */
  const connections = new WeakMap<object, ConnectionDeliveries>();
  /** Sockets whose login has not been accepted yet, with their gate and connect timer. */
  const pending = new Map<Socket, { gate: MqttFrameGate; timer: NodeJS.Timeout }>();
  const retained = new RetainedBudget(opts.maxRetained, opts.maxRetainedBytes);

  const refusalWarnings = createLogThrottle(WARN_INTERVAL_MS);
  const refuse = (reason: Refusal, detail: Record<string, unknown>, msg: string) => {
    metrics.mqttRefused.inc({ reason });
    const logged = refusalWarnings.pass(reason);
    if (logged) {
      log.warn(
        { ...detail, reason, ...logged },
        `${msg} (further ones counted in fb_edge_mqtt_refused_total)`,
      );
    } else log.debug({ ...detail, reason }, msg);
  };
  const loggedIn = (socket: Socket) => {
    const p = pending.get(socket);
    if (!p) return;
    p.gate.loggedIn = true;
    clearTimeout(p.timer);
    pending.delete(socket);
  };

  broker.authenticate = (client, username, password, callback) => {
    if (!access.authenticate(username, password)) {
      metrics.mqttDenied.inc({ kind: 'connect' });
      log.warn({ client: client.id, username }, 'mqtt login refused: unknown user or wrong password');
      return callback(null, false);
    }
    // MQTT lets a new connection with a client id take over the session of the connected one; that
    // is for a sensor coming back over a half-open connection, not for another account to cut a
    // sensor off. So a client id is bound to the user of its connected client.
    const holder = live[client.id];
    if (holder && holder !== client && users.get(holder) !== username) {
      refuse(
        'client_id_taken',
        { client: client.id, username },
        'mqtt login refused: client id in use by a client of another user',
      );
      const err = new Error('client id in use by another user') as AuthenticateError;
      err.returnCode = 5;
      return callback(err, false);
    }
    users.set(client, username);
    loggedIn(client.conn as Socket);
    callback(null, true);
  };
  broker.authorizeSubscribe = (client, sub, callback) => {
    if (access.canSubscribe(users.get(client), sub.topic)) return callback(null, sub);
    metrics.mqttDenied.inc({ kind: 'subscribe' });
    log.warn({ client: client.id, topic: sub.topic }, 'mqtt subscribe refused by ACL');
    callback(new Error(`not allowed to subscribe to ${sub.topic}`), null);
  };
  broker.authorizePublish = (client, packet, callback) => {
    if (!client) return callback(null);
    if (invalidTopic(packet.topic)) {
      refuse('invalid_topic', { client: client.id }, 'mqtt publish refused: topic is not valid UTF-8');
      return callback(new Error('topic is not valid UTF-8'));
    }
    if (packet.topic.startsWith('$SYS/')) {
      refuse(
        'sys_topic',
        { client: client.id, topic: packet.topic },
        'mqtt publish refused: $SYS/ is reserved',
      );
      return callback(new Error('$SYS/ topics are reserved'));
    }
    if (!access.canPublish(users.get(client), packet.topic)) {
      // MQTT 3.1.1 has no negative PUBACK: the connection is closed, the sensor is not acknowledged.
      metrics.mqttDenied.inc({ kind: 'publish' });
      log.warn({ client: client.id, topic: packet.topic }, 'mqtt publish refused by ACL');
      return callback(new Error(`not allowed to publish to ${packet.topic}`));
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    let deliveries = connections.get(client);
    if (!deliveries) {
      deliveries = new ConnectionDeliveries(client.id, client.clean === false);
      connections.set(client, deliveries);
    }
    ingest(packet.topic, payload, deliveries.delivery(packet, payload)).then(
      (outcome) => {
        if (packet.retain) packet.retain = retain(packet.topic, payload.length, outcome);
        callback(null);
      },
      (err: unknown) => {
        // No PUBACK: the client will send again after it reconnects.
        log.warn({ err, topic: packet.topic }, 'buffer refused reading; disconnecting client without ack');
        callback(err as Error);
      },
    );
  };
  /** Whether a retained message is kept: only for topics a sensor takes, within the budget. */
  const retain = (topic: string, bytes: number, outcome: IngestOutcome): boolean => {
    if (bytes > 0 && (outcome === 'unmatched' || outcome === 'rejected')) {
      metrics.mqttNotRetained.inc({ reason: outcome });
      return false;
    }
    if (retained.admit(topic, bytes) === 'retain') return true;
    metrics.mqttNotRetained.inc({ reason: 'limit' });
    log.debug(
      { topic, topics: retained.topics, bytes: retained.bytes },
      'retained message not kept: budget full',
    );
    return false;
  };
  broker.on('clientError', (client, err) => {
    const reason = AEDES_TOPIC_ERRORS.find(([re]) => re.test(err.message))?.[1];
    if (reason) refuse(reason, { client: client?.id, err: err.message }, 'mqtt publish refused');
    else log.debug({ client: client?.id, err: err.message }, 'mqtt client error');
  });

  // No Nagle: a PUBACK is a few bytes written as its commit ends, and held back behind an unacknowledged
  // earlier one it would wait for the sensor's delayed ACK (tens of ms), which its next message then waits on.
  const server: Server = createServer({ noDelay: true }, (socket) => {
    if (pending.size >= opts.maxPendingConnections) {
      refuse(
        'pending_limit',
        { remote: socket.remoteAddress, pending: pending.size },
        'mqtt connection closed: too many connections not logged in',
      );
      socket.destroy();
      return;
    }
    const gate = new MqttFrameGate({
      beforeLogin: opts.maxConnectBytes,
      afterLogin: opts.maxPacketBytes + PUBLISH_HEADER_ALLOWANCE,
    });
    const timer = setTimeout(() => {
      if (!pending.has(socket)) return;
      refuse('connect_timeout', { remote: socket.remoteAddress }, 'mqtt connection closed: no login in time');
      socket.destroy();
    }, opts.connectTimeoutMs);
    timer.unref();
    pending.set(socket, { gate, timer });
    socket.once('close', () => {
      clearTimeout(timer);
      pending.delete(socket);
    });
    screenSocket(socket, gate, (refusal) =>
      refuse(
        refusal.reason,
        { remote: socket.remoteAddress, detail: refusal.detail },
        'mqtt connection closed before reading an oversized or malformed packet',
      ),
    );
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : opts.port;
  log.info({ host: opts.host, port }, 'embedded MQTT broker listening');
  let closed: Promise<void> | undefined;
  return {
    port,
    close() {
      closed ??= (async () => {
        // Stop accepting first, then let aedes end the open sessions, which lets the server close.
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of pending.keys()) socket.destroy();
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        await serverClosed;
      })();
      return closed;
    },
  };
}
