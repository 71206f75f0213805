import { hash } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { RetainedState } from './outbox.js';

const topicDigest = (topic: string) => hash('sha256', topic, 'buffer').subarray(0, 16);

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

/** What a message's retained state asks of the commit that stores its readings. */
export interface RetainedCheck {
  /**
   * A replay of the payload already stored from its topic: acknowledge, store nothing. Otherwise its
   * payload is remembered as the topic's last stored one (`remember`) by the commit storing its readings.
   */
  repeat: boolean;
  topicHash: Buffer;
}

export interface RetainedTableOptions {
  /** Topics remembered at most; past it the least recently updated tenth are forgotten at once. */
  maxTopics: number;
  /** Called with the number of topics forgotten for `maxTopics`. */
  onForgotten?: (count: number) => void;
}

/**
 * The payload last stored per topic of an external broker, inside the buffer file. It owns no
 * transaction: `SqliteOutbox` asks `check` before a commit and calls `remember` inside it.
 *
 * Every message stored updates its topic's entry, retained or not: the broker clears the RETAIN flag
 * on what it passes on to a subscriber live or from the session's queue (MQTT 3.1.1), and sets it
 * only on its replay on subscribe, so the message a replay repeats may have arrived without it. A
 * replay of the payload last stored from its topic is taken for that message: MQTT gives a retained
 * message no identity, so a device publishing the same value again while the agent is not subscribed
 * cannot be told apart from it.
 */
export class RetainedTable {
  private topics: number;
  /** The `n` of the latest update. */
  private latest: number;
  private readonly stmt;

  constructor(
    db: Database.Database,
    private readonly opts: RetainedTableOptions,
  ) {
    this.stmt = {
      get: db.prepare<[Buffer], { payload_hash: Buffer }>(
        'SELECT payload_hash FROM mqtt_retained WHERE topic_hash = ?',
      ),
      put: db.prepare('INSERT OR REPLACE INTO mqtt_retained (topic_hash, payload_hash, n) VALUES (?, ?, ?)'),
      count: db.prepare<[], { c: number; n: number | null }>(
        'SELECT COUNT(*) AS c, MAX(n) AS n FROM mqtt_retained',
      ),
      oldest: db.prepare<[number], { topic_hash: Buffer }>(
        'SELECT topic_hash FROM mqtt_retained ORDER BY n LIMIT ?',
      ),
      forget: db.prepare('DELETE FROM mqtt_retained WHERE topic_hash = ?'),
    };
    const totals = this.stmt.count.get();
    this.topics = totals?.c ?? 0;
    this.latest = totals?.n ?? 0;
  }

  /** Topics remembered. */
  get size(): number {
    return this.topics;
  }

  /**
   * What to do with a message. `pending` holds what commits not yet made will remember (topic digest ->
   * payload digest), so that a replay right behind the message it repeats is recognised too.
   */
  check(state: RetainedState, pending: ReadonlyMap<string, Uint8Array>): RetainedCheck {
    const topicHash = topicDigest(state.topic);
    const key = topicHash.toString('hex');
    const last = pending.get(key) ?? this.stmt.get.get(topicHash)?.payload_hash;
    const repeat = state.replayed && last !== undefined && sameBytes(last, state.payloadHash);
    return { repeat, topicHash };
  }

  /** Remembers the payload as its topic's last stored one. Runs inside the commit storing its readings. */
  remember(check: RetainedCheck, payloadHash: Uint8Array): void {
    const known = this.stmt.get.get(check.topicHash) !== undefined;
    if (!known && ++this.topics > this.opts.maxTopics) this.forgetOldest();
    const payload = Buffer.from(payloadHash.buffer, payloadHash.byteOffset, payloadHash.byteLength);
    // Ahead of the disk if the transaction fails: a gap in the numbers, which is harmless.
    this.stmt.put.run(check.topicHash, payload, ++this.latest);
  }

  /**
   * Forgets the least recently updated topics down to 90% of `maxTopics`, in one go rather than one
   * per new topic. A forgotten topic's next replay is stored again, once. Runs inside a transaction.
   */
  private forgetOldest(): void {
    const excess = this.topics - Math.floor(this.opts.maxTopics * 0.9);
    let forgotten = 0;
    for (const { topic_hash } of this.stmt.oldest.all(excess)) {
      this.stmt.forget.run(topic_hash);
      forgotten++;
    }
    this.topics -= forgotten;
    if (forgotten > 0) this.opts.onForgotten?.(forgotten);
  }
}

/** The key `check` uses in its `pending` map. */
export const pendingKey = (check: RetainedCheck) => check.topicHash.toString('hex');
