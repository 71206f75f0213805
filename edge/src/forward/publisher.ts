/** What the forwarder needs of the uplink: publish bytes with a dedup id, resolved on the server's ack. */
export interface Publisher {
  /** Resolves when the stream has stored the message (or recognised it as a duplicate). */
  publish(subject: string, data: Uint8Array, msgId: string): Promise<{ duplicate: boolean }>;
  /** Fire-and-forget publish for heartbeats; may be lost. */
  publishStatus(subject: string, data: Uint8Array): void;
  readonly connected: boolean;
  /**
   * Resolves the next time the uplink goes from down to up (not at once when it is up), so a
   * forwarder backing off after an outage retries as soon as the link is back.
   */
  whenReconnected?(): Promise<void>;
}
