import type Database from 'better-sqlite3';
import type { MqttDelivery } from './outbox.js';

/** How often remembered MQTT deliveries are pruned (with the next commit). */
const PRUNE_DELIVERIES_MS = 60 * 60 * 1000;

export interface DeliveryLogOptions {
  /** A re-delivery is recognised only among a client's latest this many committed deliveries. */
  resendWindow: number;
  /** Deliveries remembered longer than this are forgotten. */
  maxAgeMs: number;
  /** Client ids whose deliveries are remembered; past it the least recently active tenth are forgotten. */
  maxClients: number;
  /** Called with the number of client ids forgotten for `maxClients`. */
  onClientsForgotten?: ((count: number) => void) | undefined;
}

/** A delivery's client and packet id, as one key. */
export const deliveryKey = (d: MqttDelivery) => `${d.packetId} ${d.clientId}`;

/**
 * The MQTT delivery log inside the buffer file: the latest QoS 1/2 delivery per client and packet id,
 * remembered in the same commit as its readings, so that a re-delivery of a message already committed
 * (its PUBACK lost to a crash or a dropped connection) is acknowledged without storing its readings
 * twice. It owns no transaction: `SqliteOutbox` asks `isResend` and calls `remember` and `pruneIfDue`
 * inside its group commit.
 */
export class DeliveryLog {
  /** Client ids with deliveries in the file. */
  private clients: number;
  /** Per MQTT client: the number and time of its latest committed delivery (loaded on first use). */
  private readonly latest = new Map<string, { n: number; atMs: number }>();
  private lastPruneMs = 0;
  private readonly stmt;

  constructor(
    db: Database.Database,
    private readonly opts: DeliveryLogOptions,
  ) {
    this.stmt = {
      get: db.prepare<[string, number], { hash: Buffer; n: number }>(
        'SELECT hash, n FROM mqtt_deliveries WHERE client_id = ? AND packet_id = ?',
      ),
      latest: db.prepare<[string], { n: number | null; at_ms: number | null }>(
        'SELECT MAX(n) AS n, MAX(at_ms) AS at_ms FROM mqtt_deliveries WHERE client_id = ?',
      ),
      put: db.prepare(
        'INSERT OR REPLACE INTO mqtt_deliveries (client_id, packet_id, hash, n, at_ms) VALUES (?, ?, ?, ?, ?)',
      ),
      pruneOld: db.prepare('DELETE FROM mqtt_deliveries WHERE at_ms < ?'),
      pruneClient: db.prepare('DELETE FROM mqtt_deliveries WHERE client_id = ? AND n <= ?'),
      countClients: db.prepare<[], { c: number }>(
        'SELECT COUNT(DISTINCT client_id) AS c FROM mqtt_deliveries',
      ),
      leastRecentClients: db.prepare<[number], { client_id: string }>(
        'SELECT client_id FROM mqtt_deliveries GROUP BY client_id ORDER BY MAX(at_ms) LIMIT ?',
      ),
      forgetClient: db.prepare('DELETE FROM mqtt_deliveries WHERE client_id = ?'),
    };
    this.clients = this.stmt.countClients.get()?.c ?? 0;
  }

  /** The number and time of the client's latest committed delivery. */
  private latestOf(clientId: string): { n: number; atMs: number } {
    let last = this.latest.get(clientId);
    if (!last) {
      const row = this.stmt.latest.get(clientId);
      last = { n: row?.n ?? 0, atMs: row?.at_ms ?? 0 };
      this.latest.set(clientId, last);
    }
    return last;
  }

  /**
   * Whether `d` re-delivers a committed message: it `mayBeResend`, and the client's delivery under that
   * packet id has the same hash and is among its latest `resendWindow`.
   */
  isResend(d: MqttDelivery): boolean {
    if (!d.mayBeResend) return false;
    const row = this.stmt.get.get(d.clientId, d.packetId);
    return (
      row !== undefined &&
      Buffer.compare(row.hash, d.hash) === 0 &&
      row.n > this.latestOf(d.clientId).n - this.opts.resendWindow
    );
  }

  /** Records a delivery as the client's latest. Runs inside the transaction that stores its readings. */
  remember(d: MqttDelivery, nowMs: number): void {
    const last = this.latestOf(d.clientId);
    if (last.n === 0 && ++this.clients > this.opts.maxClients) this.forgetClients();
    // Ahead of the disk if the transaction fails: a gap in the numbers, which is harmless.
    last.n++;
    last.atMs = nowMs;
    const hash = Buffer.from(d.hash.buffer, d.hash.byteOffset, d.hash.byteLength);
    this.stmt.put.run(d.clientId, d.packetId, hash, last.n, nowMs);
  }

  /**
   * Forgets the least recently active client ids down to 90% of `maxClients` (one query for many, not
   * one per new id). A client forgotten this way that re-sends a message committed earlier gets it
   * stored again. Runs inside a transaction.
   */
  private forgetClients(): void {
    const excess = this.clients - Math.floor(this.opts.maxClients * 0.9);
    let forgotten = 0;
    for (const { client_id } of this.stmt.leastRecentClients.all(excess)) {
      this.stmt.forgetClient.run(client_id);
      this.latest.delete(client_id);
      forgotten++;
    }
    this.clients -= forgotten;
    if (forgotten > 0) this.opts.onClientsForgotten?.(forgotten);
  }

  /**
   * Forgets deliveries too old or too far back to be re-delivered, at most once an hour. Runs inside
   * a transaction.
   */
  pruneIfDue(nowMs: number): void {
    if (nowMs - this.lastPruneMs < PRUNE_DELIVERIES_MS) return;
    const cutoff = nowMs - this.opts.maxAgeMs;
    this.stmt.pruneOld.run(cutoff);
    for (const [clientId, last] of this.latest) {
      if (last.atMs < cutoff) this.latest.delete(clientId);
      else this.stmt.pruneClient.run(clientId, last.n - this.opts.resendWindow);
    }
    this.clients = this.stmt.countClients.get()?.c ?? 0;
    this.lastPruneMs = nowMs;
  }
}
