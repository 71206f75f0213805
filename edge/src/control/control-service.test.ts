import { ControlReply } from '@fieldbeam/protocol';
import type { ServiceMsg } from '@nats-io/services';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { EdgeConfigError } from '../errors.js';
import { answer, type ControlTarget, fit, toControlReject } from './control-service.js';

const log = pino({ level: 'silent' });
const enc = (s: string) => new TextEncoder().encode(s);

/** A request as the services API hands it over, recording the answer. */
function request(body: string | Uint8Array) {
  const sent: { data?: unknown; error?: { code: number; description: string; data: unknown } } = {};
  const msg = {
    data: typeof body === 'string' ? enc(body) : body,
    respond: (data: string) => {
      sent.data = JSON.parse(data);
      return true;
    },
    respondError: (code: number, description: string, data: string) => {
      sent.error = { code, description, data: JSON.parse(data) };
      return true;
    },
  } as unknown as ServiceMsg;
  return { msg, sent };
}

const target = (over: Partial<ControlTarget> = {}): ControlTarget => ({
  edge: 'gw-1',
  version: '0.1.0',
  startedMs: Date.now() - 5000,
  status: () => ({}),
  sensors: () => [],
  rejects: async () => [],
  reload: () => ({
    changes: { added: ['a'], removed: [], changed: [] },
    sensors: 1,
    autoRegistered: { kept: 0, dropped: 0 },
  }),
  ...over,
});

describe('control answers', () => {
  it('answers ping and reload with the edge and the request id, in the protocol shape', async () => {
    const ping = request('{"id":"p1"}');
    await answer('ping', ping.msg, target(), { log });
    expect(ControlReply.ping.parse(ping.sent.data)).toMatchObject({
      edge: 'gw-1',
      id: 'p1',
      version: '0.1.0',
    });
    const reload = request('');
    await answer('reload', reload.msg, target(), { log });
    expect(ControlReply.reload.parse(reload.sent.data).changes.added).toEqual(['a']);
  });

  it('answers a refused config file with 422, its problems on one header line and whole in the body', async () => {
    const r = request('{"id":"r9"}');
    const counted: string[] = [];
    await answer(
      'reload',
      r.msg,
      target({
        reload: () => {
          throw new EdgeConfigError(['sensors.0.decoder: unknown', 'sensors.1.topic: empty']);
        },
      }),
      { log, requests: { inc: (l) => counted.push(`${l.op}:${l.outcome}`) } },
    );
    expect(r.sent.data).toBeUndefined();
    expect(r.sent.error?.code).toBe(422);
    expect(r.sent.error?.description).not.toMatch(/\n/);
    expect(r.sent.error?.description).toContain('sensors.1.topic: empty');
    expect(r.sent.error?.data).toMatchObject({ edge: 'gw-1', id: 'r9', error: { status: 422 } });
    expect(counted).toEqual(['reload:refused']);
  });

  it('answers bad bodies (400, 413) and a failing edge (500) without throwing', async () => {
    const bad = request('{"limit":"all"}');
    await answer('rejects', bad.msg, target(), { log });
    expect(bad.sent.error?.code).toBe(400);
    const big = request(new Uint8Array(100_000));
    await answer('status', big.msg, target(), { log });
    expect(big.sent.error?.code).toBe(413);
    const broken = request('');
    await answer(
      'status',
      broken.msg,
      target({
        status: () => {
          throw new Error('buffer is closed');
        },
      }),
      { log },
    );
    expect(broken.sent.error).toMatchObject({
      code: 500,
      description: expect.stringContaining('buffer is closed'),
    });
  });

  it('returns rejects newest first as kept, bounded by the limit asked', async () => {
    let asked = 0;
    const r = request('{"limit":2}');
    await answer(
      'rejects',
      r.msg,
      target({
        rejects: async (limit) => {
          asked = limit;
          return [
            {
              id: 2,
              at_ms: 0,
              source: 'mqtt',
              topic: 't',
              reason: 'bad',
              payload: Buffer.from('ab'),
              payload_bytes: 10,
            },
          ];
        },
      }),
      { log },
    );
    expect(asked).toBe(2);
    expect(ControlReply.rejects.parse(r.sent.data).rejects[0]).toMatchObject({
      payload: 'ab',
      truncated: true,
    });
  });

  it('fit keeps the first entries whose JSON stays within the bound', async () => {
    const list = Array.from({ length: 100 }, (_, i) => ({ i, pad: 'x'.repeat(100) }));
    const kept = fit(list, 2000);
    expect(kept.length).toBeGreaterThan(0);
    expect(JSON.stringify(kept).length).toBeLessThanOrEqual(2000);
    expect(kept[0]?.i).toBe(0);
    expect(
      toControlReject({
        id: 1,
        at_ms: 0,
        source: 's',
        topic: 't',
        reason: 'r',
        payload: Buffer.alloc(0),
        payload_bytes: 0,
      }).truncated,
    ).toBe(false);
  });
});
