/** What the forwarder needs of the uplink: publish bytes with a dedup id, resolved on the server's ack. */
export interface Publisher {
  /** Resolves when the stream has stored the message (or recognised it as a duplicate). */
  publish(subject: string, data: Uint8Array, msgId: string): Promise<{ duplicate: boolean }>;
  /** Fire-and-forget publish for heartbeats; may be lost. */
  publishStatus(subject: string, data: Uint8Array): void;
  readonly connected: boolean;
}
