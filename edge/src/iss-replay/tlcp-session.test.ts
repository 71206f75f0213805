import { describe, expect, it } from 'vitest';
import { createItemFeed } from './item-feed.js';
import { decodeUpdate, type FieldValue } from './tlcp-encoding.js';
import { TlcpSession, type TlcpStream } from './tlcp-session.js';

const add = (over: Record<string, string> = {}) =>
  new Map(
    Object.entries({
      LS_reqId: '1',
      LS_op: 'add',
      LS_subId: '1',
      LS_mode: 'MERGE',
      LS_group: 'TIME_000001 USLAB000058',
      LS_schema: 'TimeStamp Value Status.Class Status.Indicator Status.Color CalibratedData',
      LS_snapshot: 'true',
      LS_ack: 'false',
      ...over,
    }),
  );

function recorder(writable = true) {
  const written: string[] = [];
  const stream: TlcpStream & { written: string[]; open: boolean } = {
    written,
    open: writable,
    writable: () => stream.open,
    send: (lines) => {
      written.push(...lines);
    },
    close: () => {},
  };
  return stream;
}

/** Applies U lines the way the client does and returns the latest values per "subId,item". */
function clientView(lines: readonly string[], fieldCount: number) {
  const view = new Map<string, FieldValue[]>();
  for (const l of lines.filter((x) => x.startsWith('U,'))) {
    const [, sub, item] = l.split(',', 3);
    const key = `${sub},${item}`;
    const encoded = l.slice(`U,${sub},${item},`.length);
    view.set(key, decodeUpdate(view.get(key), encoded, fieldCount));
  }
  return view;
}

describe('TLCP session', () => {
  it('answers add with SUBOK counts matching the request, then the snapshot', () => {
    const feed = createItemFeed();
    feed.publish([
      { item: 'USLAB000058', fields: { TimeStamp: '1.5', Value: '742.9', 'Status.Class': '24' } },
    ]);
    const session = new TlcpSession('S1', 0);
    const stream = recorder();
    session.bind(stream);
    const { replies } = session.control(add({ LS_schema: 'Value Status.Class' }), feed.state);
    expect(replies).toEqual(['REQOK,1']);
    expect(stream.written).toEqual(['SUBOK,1,2,2', 'U,1,2,742.9|24']);
    expect(session.progress).toBe(2);
  });

  it('sends deltas that the client decodes back to the feed values', () => {
    const feed = createItemFeed();
    const session = new TlcpSession('S1', 0);
    const stream = recorder();
    session.bind(stream);
    feed.onChange((c) => session.publish(c));
    session.control(add(), feed.state);
    feed.publish([
      { item: 'USLAB000058', fields: { TimeStamp: '1', Value: 'a|b', 'Status.Color': 'Green' } },
    ]);
    feed.publish([{ item: 'USLAB000058', fields: { TimeStamp: '2', 'Status.Indicator': '' } }]);
    feed.publish([{ item: 'USLAB000058', fields: { TimeStamp: '3', Value: null } }]);
    expect(stream.written.slice(1)).toEqual(['U,1,2,1|a%7Cb|#|#|Green|#', 'U,1,2,2|^2|$|^2', 'U,1,2,3|#|^4']);
    expect(clientView(stream.written, 6).get('1,2')).toEqual(['3', null, null, '', 'Green', null]);
  });

  it('replays from the recovery point and keeps counting across streams', () => {
    const feed = createItemFeed();
    const session = new TlcpSession('S1', 0);
    feed.onChange((c) => session.publish(c));
    const first = recorder();
    session.bind(first);
    session.control(add(), feed.state);
    feed.publish([{ item: 'TIME_000001', fields: { TimeStamp: '1', Value: '1' } }]);
    session.unbind(first, 10);
    expect(session.unboundSinceMs).toBe(10);
    // Two updates while no stream is bound, the first of which the client had before the drop.
    feed.publish([{ item: 'TIME_000001', fields: { TimeStamp: '2', Value: '2' } }]);
    feed.publish([{ item: 'TIME_000001', fields: { TimeStamp: '3', Value: '3' } }]);
    const second = recorder();
    expect(session.bind(second, 2)).toEqual(['PROG,2', 'U,1,1,2|2|^4', 'U,1,1,3|3|^4']);
    expect(session.bind(recorder(), 9)).toBeUndefined();
  });

  it('holds data back while the stream is not writable and delivers it on flush', () => {
    const feed = createItemFeed();
    const session = new TlcpSession('S1', 0);
    feed.onChange((c) => session.publish(c));
    const stream = recorder(false);
    session.bind(stream);
    session.control(add(), feed.state);
    expect(stream.written).toEqual([]);
    stream.open = true;
    session.flush();
    expect(stream.written).toEqual(['SUBOK,1,2,6']);
  });

  it('forgets recovery points beyond its log limit', () => {
    const feed = createItemFeed();
    const session = new TlcpSession('S1', 0, 3);
    feed.onChange((c) => session.publish(c));
    session.control(add(), feed.state);
    for (let i = 0; i < 5; i++) feed.publish([{ item: 'USLAB000058', fields: { Value: String(i) } }]);
    expect(session.progress).toBe(6);
    expect(session.bind(recorder(), 2)).toBeUndefined();
    expect(session.bind(recorder(), 3)?.[0]).toBe('PROG,3');
  });

  it('refuses what ISSLIVE does not serve, with the TLCP error codes', () => {
    const session = new TlcpSession('S1', 0);
    const state = () => undefined;
    expect(session.control(add({ LS_mode: 'RAW' }), state).replies[0]).toMatch(/^REQERR,1,24,/);
    expect(session.control(add({ LS_schema: 'Value Bogus' }), state).replies[0]).toMatch(/^REQERR,1,23,/);
    expect(session.control(add({ LS_group: '' }), state).replies[0]).toMatch(/^REQERR,1,21,/);
    expect(session.control(add({ LS_data_adapter: 'ISSLIVE' }), state).replies[0]).toMatch(/^REQERR,1,17,/);
    expect(
      session.control(
        new Map([
          ['LS_reqId', '7'],
          ['LS_op', 'delete'],
          ['LS_subId', '4'],
        ]),
        state,
      ).replies[0],
    ).toMatch(/^REQERR,7,19,/);
  });

  it('unsubscribes with UNSUB and flags destroy', () => {
    const session = new TlcpSession('S1', 0);
    const stream = recorder();
    session.bind(stream);
    session.control(add(), () => undefined);
    session.control(
      new Map([
        ['LS_reqId', '2'],
        ['LS_op', 'delete'],
        ['LS_subId', '1'],
      ]),
      () => undefined,
    );
    expect(stream.written).toEqual(['SUBOK,1,2,6', 'UNSUB,1']);
    expect(session.subscriptionCount).toBe(0);
    expect(
      session.control(
        new Map([
          ['LS_reqId', '3'],
          ['LS_op', 'destroy'],
        ]),
        () => undefined,
      ),
    ).toEqual({
      replies: ['REQOK,3'],
      destroy: true,
    });
  });
});
