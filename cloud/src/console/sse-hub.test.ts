import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { frame, SseHub } from './sse-hub.js';

/** A response that never drains: every write stays in its buffer, as with a browser that stopped reading. */
class StuckSink extends EventEmitter {
  writableLength = 0;
  destroyed = false;
  ended = false;
  headers: Record<string, string> | undefined;
  writeHead(_status: number, headers: Record<string, string>) {
    this.headers = headers;
    return this;
  }
  write(text: string) {
    this.writableLength += Buffer.byteLength(text);
    return this.writableLength < 16384;
  }
  end() {
    this.ended = true;
    return this;
  }
  destroy() {
    this.destroyed = true;
    this.emit('close');
    return this;
  }
}

/** A response whose client reads everything at once. */
class ReadingSink extends StuckSink {
  received = '';
  override write(text: string) {
    this.received += text;
    return true;
  }
}

const limits = { maxClients: 3, maxPerAddress: 3, maxQueuedBytes: 10_000, heartbeatMs: 60_000 };
// biome-ignore lint/suspicious/noExplicitAny: the fakes carry the part of ServerResponse the hub uses
const asRes = (s: StuckSink) => s as any;

describe('SseHub', () => {
  it('drops a client whose unsent bytes pass the bound, and never holds more than bound + one event for it', () => {
    const events: { clients: number; dropped?: string }[] = [];
    const hub = new SseHub(limits, (e) => events.push(e));
    const stuck = new StuckSink();
    const reader = new ReadingSink();
    hub.add(asRes(stuck), undefined);
    hub.add(asRes(reader), undefined);
    const data = { text: 'x'.repeat(1000) };
    const one = Buffer.byteLength(frame('fleet', data));
    for (let i = 0; i < 1000; i++) hub.broadcast('fleet', data);
    expect(stuck.destroyed).toBe(true);
    expect(stuck.writableLength).toBeLessThanOrEqual(limits.maxQueuedBytes + one);
    expect(hub.size).toBe(1);
    expect(events.filter((e) => e.dropped === 'slow')).toHaveLength(1);
    // The client that reads got every event.
    expect(reader.received.split('event: fleet\n').length - 1).toBe(1000);
    expect(reader.destroyed).toBe(false);
    hub.close();
  });

  it('refuses a client beyond maxClients and takes one again when a client leaves', () => {
    const events: { clients: number; dropped?: string }[] = [];
    const hub = new SseHub(limits, (e) => events.push(e));
    const sinks = [new ReadingSink(), new ReadingSink(), new ReadingSink()];
    for (const s of sinks) expect(hub.add(asRes(s), undefined)).toBeDefined();
    const extra = new ReadingSink();
    expect(hub.add(asRes(extra), undefined)).toBeUndefined();
    expect(extra.headers).toBeUndefined();
    expect(events.at(-1)).toEqual({ clients: 3, dropped: 'full' });
    sinks[0]?.destroy();
    expect(hub.size).toBe(2);
    expect(hub.add(asRes(extra), undefined)).toBeDefined();
    hub.close();
  });

  it('bounds the streams of one address, admins aside, and makes room for an admin when full', () => {
    const events: { clients: number; dropped?: string }[] = [];
    const hub = new SseHub({ ...limits, maxClients: 4, maxPerAddress: 2 }, (e) => events.push(e));
    const from = (address: string, admin = false) => ({ address, admin });
    const a = [new ReadingSink(), new ReadingSink(), new ReadingSink()];
    expect(hub.add(asRes(a[0] as ReadingSink), undefined, from('10.0.0.1'))).toBeDefined();
    expect(hub.add(asRes(a[1] as ReadingSink), undefined, from('10.0.0.1'))).toBeDefined();
    expect(hub.refusal(from('10.0.0.1'))).toBe('address');
    expect(hub.add(asRes(a[2] as ReadingSink), undefined, from('10.0.0.1'))).toBeUndefined();
    expect(events.at(-1)).toEqual({ clients: 2, dropped: 'address' });
    // Another address, then the hub is full for everyone anonymous...
    expect(hub.add(asRes(new ReadingSink()), undefined, from('10.0.0.2'))).toBeDefined();
    expect(hub.add(asRes(new ReadingSink()), undefined, from('10.0.0.2'))).toBeDefined();
    expect(hub.refusal(from('10.0.0.3'))).toBe('full');
    // ...but an admin gets a slot: the oldest stream of the busiest address makes room, and ends.
    const admin = new ReadingSink();
    expect(hub.add(asRes(admin), undefined, from('10.0.0.1', true))).toBeDefined();
    expect(hub.size).toBe(4);
    expect(a[0]?.ended).toBe(true);
    expect(events.some((e) => e.dropped === 'evicted')).toBe(true);
    // The admin is not counted against its address; a leaving stream frees its address's share.
    expect(hub.refusal(from('10.0.0.1', true))).toBeUndefined();
    a[1]?.destroy();
    expect(hub.add(asRes(new ReadingSink()), undefined, from('10.0.0.1'))).toBeDefined();
    // Only admins left to end: another admin is refused when every slot holds one.
    const full = new SseHub({ ...limits, maxClients: 1 });
    full.add(asRes(new ReadingSink()), undefined, from('10.0.0.9', true));
    expect(full.refusal(from('10.0.0.8', true))).toBe('full');
    full.close();
    hub.close();
  });

  it('writes event-stream headers and frames, and ends every stream on close', () => {
    const hub = new SseHub<string[]>(limits);
    const a = new ReadingSink();
    const b = new ReadingSink();
    const ca = hub.add(asRes(a), ['x']);
    hub.add(asRes(b), ['y']);
    expect(a.headers?.['content-type']).toMatch(/^text\/event-stream/);
    expect(a.headers?.['cache-control']).toBe('no-store');
    hub.broadcast('readings', { v: 1 }, (c) => c.subscription.includes('x'));
    expect(a.received).toContain('event: readings\ndata: {"v":1}\n\n');
    expect(b.received).not.toContain('readings');
    expect(ca && hub.send(ca, 'fleet', { n: 2 })).toBe(true);
    hub.close();
    expect(a.ended && b.ended).toBe(true);
    expect(hub.add(asRes(new ReadingSink()), [])).toBeUndefined();
  });

  it('puts an event with newlines in its data on one data line', () => {
    expect(frame('x', { t: 'a\nb' })).toBe('event: x\ndata: {"t":"a\\nb"}\n\n');
  });
});
