import type { Socket } from 'node:net';

/** Why the gate closed a connection; the `reason` label of `fb_edge_mqtt_refused_total`. */
export type FrameRefusal = {
  reason: 'connect_too_large' | 'packet_too_large' | 'protocol';
  detail: string;
};

export interface FrameLimits {
  /** Largest remaining length of any packet before the broker has accepted the CONNECT. */
  beforeLogin: number;
  /** Largest remaining length of any packet once it has. */
  afterLogin: number;
}

const CONNECT = 1;

/**
 * Reads the MQTT fixed headers (packet type and remaining length) out of a connection's byte
 * stream and skips the bodies without keeping them, so a packet announcing more than its limit is
 * refused when its header arrives, before anything buffers its body. The MQTT parser in aedes
 * (mqtt-packet) has no size limit: it appends bytes until the announced length is there, so a
 * header announcing 100 MiB would otherwise cost 100 MiB. Pure: the caller feeds it chunks.
 */
export class MqttFrameGate {
  /** Set once the broker has accepted the CONNECT: later packets get the larger limit. */
  loggedIn = false;
  private state: 'type' | 'length' | 'body' = 'type';
  private type = 0;
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;
  private packets = 0;

  constructor(private readonly limits: FrameLimits) {}

  /** Screens the next bytes of the stream; returns why the connection must close, if it must. */
  screen(chunk: Uint8Array): FrameRefusal | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'body') {
        const n = Math.min(this.remaining, chunk.length - i);
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = 'type';
        continue;
      }
      const byte = chunk[i++] as number;
      if (this.state === 'type') {
        this.type = byte >> 4;
        // [MQTT-3.1.0-1]: the first packet is a CONNECT; aedes would close the connection too,
        // but only after buffering the whole packet.
        if (this.packets++ === 0 && this.type !== CONNECT)
          return { reason: 'protocol', detail: `first packet is of type ${this.type}, not CONNECT` };
        this.state = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      // Remaining length: a variable byte integer of at most 4 bytes (MQTT 3.1.1 section 2.2.3).
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      if (byte & 0x80) {
        if (++this.lengthBytes === 4)
          return { reason: 'protocol', detail: 'remaining length longer than 4 bytes' };
        continue;
      }
      const limit = this.loggedIn ? this.limits.afterLogin : this.limits.beforeLogin;
      if (this.length > limit) {
        const what = this.type === CONNECT ? 'CONNECT' : `packet of type ${this.type}`;
        return {
          reason: this.loggedIn ? 'packet_too_large' : 'connect_too_large',
          detail: `${what} announces ${this.length} bytes, more than ${limit}${this.loggedIn ? '' : ' allowed before login'}`,
        };
      }
      this.remaining = this.length;
      this.state = this.length === 0 ? 'type' : 'body';
    }
    return undefined;
  }
}

/**
 * Puts `gate` in front of everything that reads `socket`: a TCP socket hands each chunk it reads
 * from the kernel to `push()` (the stream implementer's side of a Readable), so screening there sees
 * the bytes before they are buffered in the socket or by the MQTT parser. A refused chunk is never
 * pushed; the socket is destroyed, which the broker sees as a closed connection.
 */
export function screenSocket(
  socket: Socket,
  gate: MqttFrameGate,
  onRefused: (refusal: FrameRefusal) => void,
): void {
  const push = socket.push.bind(socket);
  socket.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    if (chunk instanceof Uint8Array && !socket.destroyed) {
      const refusal = gate.screen(chunk);
      if (refusal) {
        socket.destroy();
        onRefused(refusal);
        return false;
      }
    }
    return push(chunk, encoding);
  };
}
