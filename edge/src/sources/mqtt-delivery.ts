import { createHash, hash } from 'node:crypto';
import type { MqttDelivery } from '../outbox/outbox.js';

/**
 * Tells, for one MQTT connection, which QoS 1/2 PUBLISH packets may be re-deliveries of a message sent
 * on an earlier connection, and describes them for the outbox, which knows what was committed.
 *
 * The DUP flag alone cannot be trusted for this: mqtt.js (5.x) never sets it when it sends its
 * unacknowledged messages again after reconnecting, and neither did other clients for years. So a
 * packet id used for the first time on a connection of a persistent session (CONNECT with clean
 * session / clean start 0) may be a re-delivery too: that session is what the client re-sends its
 * unacknowledged messages from. A client with a clean session has, by the spec, nothing to re-send
 * without DUP; treating its first packets as possible re-deliveries would drop genuine readings of
 * sensors that start their packet ids over on every boot (deep-sleep firmware) and repeat a value.
 * Within one connection a packet id comes back only after its PUBACK, so there it is a new message
 * unless the DUP flag says otherwise.
 */
export class ConnectionDeliveries {
  /**
   * One bit per packet id seen on this connection (8 KiB), made on the first QoS 1/2 message of a
   * persistent session: only there does a first use mean anything, and a connection that never
   * needs it should not hold it.
   */
  private seen: Uint8Array | undefined;

  constructor(
    readonly clientId: string,
    /** The session outlives the connection (clean session 0). */
    readonly persistent: boolean,
  ) {}

  /** The delivery of a PUBLISH packet, or undefined for QoS 0 (no packet id, no acknowledgement). */
  delivery(
    packet: {
      topic: string;
      qos: number;
      messageId?: number | undefined;
      dup?: boolean | undefined;
    },
    payload: Uint8Array,
  ): MqttDelivery | undefined {
    const id = packet.messageId;
    if (packet.qos === 0 || id === undefined) return undefined;
    let firstUse = false;
    if (this.persistent) {
      this.seen ??= new Uint8Array(65536 / 8);
      const bit = 1 << (id & 7);
      firstUse = ((this.seen[id >> 3] ?? 0) & bit) === 0;
      this.seen[id >> 3] = (this.seen[id >> 3] ?? 0) | bit;
    }
    return {
      clientId: this.clientId,
      packetId: id,
      hash: deliveryHash(packet.topic, payload),
      mayBeResend: packet.dup === true || firstUse,
    };
  }
}

/** Where `deliveryHash` lays out its input: reused, as it runs for every QoS 1 message. */
const SCRATCH_BYTES = 16 * 1024;
const scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
const ZERO = new Uint8Array(1);

/**
 * The first 16 bytes of SHA-256 over topic, a zero byte and payload: what a re-delivery repeats exactly.
 * Taken through the hex digest: on Node 24 `hash(..., 'buffer')` costs about 1.1 µs a call for a small
 * input and the hex form about 0.2 µs, and this runs for every QoS 1 message on the main thread.
 */
export function deliveryHash(topic: string, payload: Uint8Array): Buffer {
  // At most 3 bytes per UTF-16 unit of the topic. A message that may not fit is hashed in parts, not
  // copied: a sensor flooding large payloads would otherwise cost a copy of each, off the V8 heap
  // where it is collected late, on top of the packet's own buffer.
  if (topic.length * 3 + 1 + payload.length > SCRATCH_BYTES) {
    const parts = createHash('sha256').update(topic, 'utf8').update(ZERO).update(payload);
    return parts.digest().subarray(0, 16);
  }
  const input = scratch;
  const topicLength = input.write(topic, 0, 'utf8');
  input[topicLength] = 0;
  input.set(payload, topicLength + 1);
  const digest = hash('sha256', input.subarray(0, topicLength + 1 + payload.length), 'hex');
  return Buffer.from(digest.slice(0, 32), 'hex');
}
