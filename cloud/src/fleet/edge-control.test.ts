import { errors, headers, type Msg, TimeoutError } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { CloudErrorCode } from '../errors.js';
import { type ControlConnection, EdgeControlError, requestEdge } from './edge-control.js';

/** A connection whose edge answers with `answer(subject, request body)`. */
function answering(
  answer: (subject: string, req: Record<string, unknown>) => Partial<Msg>,
): ControlConnection {
  return {
    request: async (subject, data) =>
      answer(subject, JSON.parse(new TextDecoder().decode(data as Uint8Array))) as Msg,
  };
}
const json = (v: unknown) => ({ data: new TextEncoder().encode(JSON.stringify(v)) });
const failing = (err: Error): ControlConnection => ({ request: async () => Promise.reject(err) });

async function caught(p: Promise<unknown>): Promise<EdgeControlError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EdgeControlError);
  return err as EdgeControlError;
}

describe('requestEdge', () => {
  it('sends to the edge op subject with an id and returns the typed reply echoing it', async () => {
    let asked = '';
    const nc = answering((subject, req) => {
      asked = subject;
      return json({
        edge: 'gw-1',
        id: req.id,
        version: '1.2.3',
        uptimeS: 4,
        time: '2026-12-05T10:00:00.000Z',
      });
    });
    const reply = await requestEdge(nc, 'gw-1', 'ping', { id: 'abc' });
    expect(asked).toBe('fb.ctl.gw-1.ping');
    expect(reply).toMatchObject({ edge: 'gw-1', id: 'abc', version: '1.2.3' });
  });

  it('refuses a reply for another request or another edge', async () => {
    const other = answering(() =>
      json({ edge: 'gw-1', id: 'not-mine', version: '1', uptimeS: 0, time: '2026-12-05T10:00:00.000Z' }),
    );
    const err = await caught(requestEdge(other, 'gw-1', 'ping'));
    expect(err.code).toBe(CloudErrorCode.EDGE_REPLY_INVALID);
    const wrongEdge = answering((_s, req) =>
      json({ edge: 'gw-2', id: req.id, version: '1', uptimeS: 0, time: '2026-12-05T10:00:00.000Z' }),
    );
    expect((await caught(requestEdge(wrongEdge, 'gw-1', 'ping'))).code).toBe(
      CloudErrorCode.EDGE_REPLY_INVALID,
    );
  });

  it('maps no responders to EDGE_NOT_CONNECTED (retryable) and a timeout to EDGE_TIMEOUT', async () => {
    const noResponders = new errors.RequestError('no responders', {
      cause: new errors.NoRespondersError('fb.ctl.gw-1.status'),
    });
    const offline = await caught(requestEdge(failing(noResponders), 'gw-1', 'status'));
    expect(offline).toMatchObject({ code: CloudErrorCode.EDGE_NOT_CONNECTED, retryable: true, edge: 'gw-1' });
    expect(offline.message).toContain('not connected');
    const slow = await caught(
      requestEdge(failing(new TimeoutError()), 'gw-1', 'status', undefined, { timeoutMs: 50 }),
    );
    expect(slow).toMatchObject({ code: CloudErrorCode.EDGE_TIMEOUT, retryable: true });
    expect(slow.message).toContain('50 ms');
  });

  it('maps an error reply by its service error code: 4xx refused (no retry), 5xx failed (retry)', async () => {
    const errorReply = (code: string, text: string) =>
      answering(() => {
        const h = headers();
        h.set('Nats-Service-Error', text);
        h.set('Nats-Service-Error-Code', code);
        return { data: new Uint8Array(), headers: h };
      });
    const refused = await caught(
      requestEdge(errorReply('422', 'sensors.0.decoder: unknown'), 'gw-1', 'reload'),
    );
    expect(refused).toMatchObject({ code: CloudErrorCode.EDGE_REFUSED, retryable: false, status: 422 });
    expect(refused.message).toContain('sensors.0.decoder: unknown');
    const failed = await caught(requestEdge(errorReply('500', 'buffer is closed'), 'gw-1', 'rejects'));
    expect(failed).toMatchObject({ code: CloudErrorCode.EDGE_FAILED, retryable: true, status: 500 });
  });

  it('reads an error body without headers, and refuses a reply of the wrong shape', async () => {
    const body = answering((_s, req) =>
      json({ edge: 'gw-1', id: req.id, error: { status: 400, message: 'bad' } }),
    );
    expect(await caught(requestEdge(body, 'gw-1', 'status'))).toMatchObject({
      code: CloudErrorCode.EDGE_REFUSED,
    });
    const notJson = answering(() => ({ data: new TextEncoder().encode('<html>') }));
    expect((await caught(requestEdge(notJson, 'gw-1', 'status'))).code).toBe(
      CloudErrorCode.EDGE_REPLY_INVALID,
    );
    const shape = answering((_s, req) => json({ edge: 'gw-1', id: req.id, rejects: 'none' }));
    const err = await caught(requestEdge(shape, 'gw-1', 'rejects'));
    expect(err.code).toBe(CloudErrorCode.EDGE_REPLY_INVALID);
    expect(err.message).toContain('rejects');
  });

  it('refuses an invalid edge id before sending anything', async () => {
    let sent = false;
    const nc = answering(() => {
      sent = true;
      return json({});
    });
    await expect(requestEdge(nc, 'a.b', 'ping')).rejects.toThrow(/not a valid subject token/);
    expect(sent).toBe(false);
  });
});
