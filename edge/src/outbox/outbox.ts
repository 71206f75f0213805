import type { Observation } from '@fieldbeam/protocol';

/** Rows handed to the forwarder: a contiguous run of buffer sequence numbers. */
export interface OutboxBatch {
  first: number;
  last: number;
  /**
   * The observations as the JSON texts they were stored as, oldest first. The forwarder splices them
   * into the batch message as they are: no parse and re-serialise per reading on the way out.
   */
  rows: string[];
  /**
   * Ranges dropped under `drop_oldest` not yet reported, sent along with this batch (see
   * `DroppedRanges`); forgotten once it is acknowledged.
   */
  dropped?: [number, number][];
}

/** The observations of a batch, parsed (for tools and tests; the forwarder does not need it). */
export function batchObservations(batch: OutboxBatch | undefined): Observation[] {
  return batch ? batch.rows.map((r) => JSON.parse(r) as Observation) : [];
}

export type FullPolicy = 'block' | 'drop_oldest';

export interface OutboxStats {
  depth: number;
  bytes: number;
  capacityBytes: number;
  oldestReceivedMs: number | null;
  dropped: number;
  /** Inputs set aside as rejects by this buffer file (they never took a sequence number). */
  quarantined: number;
  appended: number;
  acked: number;
}

/**
 * One QoS 1/2 MQTT message as the connection it arrived on saw it. The outbox remembers it in the same
 * commit as its readings, so that a re-delivery of a message already committed (its PUBACK lost to a
 * crash or a dropped connection) can be acknowledged again without storing its readings twice: readings
 * stamped with the receipt time get a new id on every delivery, so the id cannot tell them apart.
 */
export interface MqttDelivery {
  /** The MQTT client id the session belongs to. */
  clientId: string;
  packetId: number;
  /** Digest of topic and payload: a re-delivery repeats both exactly. */
  hash: Uint8Array;
  /**
   * Whether this can be a re-delivery at all: the DUP flag is set, or the packet id is used for the
   * first time on a connection of a persistent session (the MQTT session the client kept is where
   * its unacknowledged messages are sent again from; not every client sets DUP when it does).
   */
  mayBeResend: boolean;
}

/**
 * A message from an external broker, as retained messages are concerned. A broker sends the retained
 * message of every topic a subscription matches each time the agent subscribes (each start, each
 * reconnect): the buffer remembers, per topic, the payload it last stored, and does not store such a
 * replay of it again (see `RetainedTable`).
 */
export interface RetainedState {
  topic: string;
  /** Digest of topic and payload (`deliveryHash`). */
  payloadHash: Uint8Array;
  /** Sent from the broker's retained store on subscribe (the RETAIN flag on a delivery to a subscriber). */
  replayed: boolean;
}

/**
 * What became of an append with a delivery: committed, recognised as a re-delivery and not stored, or
 * a broker's replay of the retained message already stored from its topic, not stored either.
 */
export type DeliveryOutcome = 'stored' | 'duplicate' | 'retained_repeat';

/** Quality flag of a reading stamped with the receipt time while the wall clock was not synchronised. */
export const CLOCK_UNSYNCED = 'clock_unsynced';
/** Replaces `CLOCK_UNSYNCED` once such a reading's time was placed from the monotonic clock. */
export const CLOCK_RESTAMPED = 'clock_restamped';

/**
 * What the forwarder needs of the buffer: the oldest rows not yet taken, and their removal once the
 * uplink acknowledged them.
 */
export interface OutboxQueue {
  /** Random per buffer file: with the sequence range it makes batch message ids that never repeat. */
  readonly bufferId: string;
  /**
   * The first sequence number accounted for under `bufferId` (1 for a new file): the collector proves
   * completeness from here on.
   */
  readonly bufferStart: number;
  /**
   * The oldest rows after those already taken. Taken rows stay in the buffer (and are spared by
   * `drop_oldest`) until acked; the taker keeps them to send again if the uplink fails.
   */
  take(maxCount: number, maxBytes: number): OutboxBatch | undefined;
  /** Resolves when the next append has been committed. */
  whenAppended(): Promise<void>;
  /** Deletes rows the uplink acknowledged. */
  ack(first: number, last: number): void;
}

/**
 * The edge's durable buffer: the one port the agent and its sources use (the SQLite adapter is made
 * in one place, `openOutbox`, and may live on a thread of its own: `startBufferThread`). Readings are
 * appended by sources and removed only once the uplink has acknowledged them, so a crash at any
 * point loses nothing that was acknowledged to a sensor. Rejected inputs are kept beside them
 * (`RejectLog`). Everything that waits on the file is a promise, so the file can be on another thread;
 * what the agent reads without waiting (`stats`, the counters) is the latest account of it.
 */
export interface Outbox extends RejectLog {
  /** Random per buffer file (see `OutboxQueue.bufferId`). */
  readonly bufferId: string;
  /** The first sequence number accounted for under `bufferId` (see `OutboxQueue.bufferStart`). */
  readonly bufferStart: number;
  /** Resolves once the observations are committed to disk; waits while full under `block`. */
  append(observations: Observation[]): Promise<void>;
  /**
   * Like `append`, but where `block` would make it wait for room it is refused at once with
   * BUFFER_FULL and nothing of it is stored: for sources that can ask their client to come back
   * later (HTTP's 429) rather than hold it waiting.
   */
  appendOrRefuse(observations: Observation[]): Promise<void>;
  /**
   * Like `append`, for the readings of one MQTT message: `delivery` is remembered in the same commit,
   * and a re-delivery of a message already committed resolves `'duplicate'` and stores nothing (it
   * needs no room, so it is answered even while the buffer is full). With `retained` (messages from
   * an external broker), a broker's replay of the payload last stored from its topic resolves
   * `'retained_repeat'` and stores nothing.
   */
  appendOnce(
    observations: Observation[],
    delivery?: MqttDelivery,
    retained?: RetainedState,
  ): Promise<DeliveryOutcome>;
  /**
   * Once the wall clock is synchronised: readings still waiting here that were stamped while it was
   * not (`CLOCK_UNSYNCED`) get their time from the monotonic clock and a new id, flagged
   * `CLOCK_RESTAMPED`. Resolves with how many were re-stamped.
   */
  restampUnsynced(nowMs?: number): Promise<number>;
  /** MQTT re-deliveries recognised and not stored again since the buffer was opened. */
  readonly duplicateDeliveries: number;
  /** Brokers' replays of retained messages already stored, not stored again since the buffer was opened. */
  readonly retainedRepeatDeliveries: number;
  /**
   * The buffer's account: current on the thread that owns the file, and on another thread as of its
   * latest report (sent with every settled append, and every 100 ms while it changes). Throws when the buffer no longer answers (an I/O error from a failing card).
   */
  stats(): OutboxStats;
  /** Commits what is queued and closes the file. */
  close(): Promise<void>;
}

/** An input a source could not use, as it hands it over. */
export interface RejectEntry {
  source: string;
  topic: string;
  /** What was wrong with it, for a person: names the cause and, where there is one, the fix. */
  reason: string;
  /** As received, or its first bytes; the log keeps only its first bytes (see `RejectLog`). */
  payload: Uint8Array;
  /** The size as received, when `payload` holds only its first bytes. */
  payloadLength?: number;
}

/** A reject as the log kept it. */
export interface KeptReject {
  id: number;
  at_ms: number;
  source: string;
  topic: string;
  reason: string;
  /** The first bytes of the payload (all of it when `payload_bytes` is no larger). */
  payload: Buffer;
  /** The payload's length as received. */
  payload_bytes: number;
}

/**
 * Rejected inputs kept for an operator (`fieldbeam-edge rejects`). The log is bounded in entries and
 * in bytes, each payload is cut to a fixed size, and the oldest entries give way to new ones: a flood
 * of bad input can neither fill the disk nor slow the readings around it.
 */
export interface RejectLog {
  /**
   * Resolves once the entry is written; it is written with the next commit of readings (no commit of
   * its own while readings are coming in, and never a sync to disk of its own: a reject lost to a
   * power cut costs nothing). Rejects only when the log is closed or the write failed.
   */
  recordReject(entry: RejectEntry): Promise<void>;
  /** The latest kept rejects, newest first. */
  listRejects(limit: number): Promise<KeptReject[]>;
}
