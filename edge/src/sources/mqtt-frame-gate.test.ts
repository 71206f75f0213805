import { describe, expect, it } from 'vitest';
import { MqttFrameGate } from './mqtt-frame-gate.js';

/** A fixed header: packet type and the MQTT variable byte integer of `length`. */
function header(type: number, length: number): Buffer {
  const out = [type << 4];
  let n = length;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

const packet = (type: number, length: number) => Buffer.concat([header(type, length), Buffer.alloc(length)]);
const limits = { beforeLogin: 1024, afterLogin: 4096 };

describe('MqttFrameGate', () => {
  it('refuses a CONNECT announcing more than the login limit from its header alone', () => {
    const gate = new MqttFrameGate(limits);
    expect(gate.screen(header(1, 100 * 1024 * 1024))).toMatchObject({ reason: 'connect_too_large' });
  });

  it('passes packets within the limits, split anywhere across chunks, and keeps its place', () => {
    const stream = Buffer.concat([packet(1, 1000), packet(3, 300), packet(12, 0), packet(3, 200)]);
    for (let cut = 1; cut < stream.length; cut += 7) {
      const gate = new MqttFrameGate(limits);
      expect(gate.screen(stream.subarray(0, cut))).toBeUndefined();
      expect(gate.screen(stream.subarray(cut))).toBeUndefined();
      // Still on a packet boundary: the next header is read as one.
      expect(gate.screen(header(3, 2000))).toMatchObject({ reason: 'connect_too_large' });
    }
  });

  it('applies the larger limit once logged in, and refuses past it', () => {
    const gate = new MqttFrameGate(limits);
    expect(gate.screen(packet(1, 10))).toBeUndefined();
    expect(gate.screen(header(3, 2000))).toMatchObject({ reason: 'connect_too_large' });
    const after = new MqttFrameGate(limits);
    after.screen(packet(1, 10));
    after.loggedIn = true;
    expect(after.screen(packet(3, 4096))).toBeUndefined();
    expect(after.screen(header(3, 4097))).toMatchObject({ reason: 'packet_too_large' });
  });

  it('refuses a first packet that is not CONNECT and a remaining length over 4 bytes', () => {
    expect(new MqttFrameGate(limits).screen(packet(3, 10))).toMatchObject({ reason: 'protocol' });
    const gate = new MqttFrameGate(limits);
    expect(gate.screen(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff]))).toMatchObject({ reason: 'protocol' });
  });
});
