import { describe, expect, it } from 'vitest';
import { EdgeError, EdgeErrorCode } from '../errors.js';
import { createUplinkErrorLog } from './uplink-error-log.js';

function harness() {
  let t = 0;
  const lines: Record<string, unknown>[] = [];
  const onError = createUplinkErrorLog(
    { warn: (obj, msg) => lines.push({ ...obj, msg }) },
    { everyMs: 60_000, now: () => t },
  );
  return { lines, onError, advance: (ms: number) => (t += ms) };
}

const noStream = () => new EdgeError(EdgeErrorCode.NO_STREAM, 'no JetStream stream takes fb.obs.gw', true);

describe('uplink error log', () => {
  it('logs a lasting failure once per interval, with how often it repeated', () => {
    const h = harness();
    for (let i = 0; i < 10; i++) {
      h.onError(noStream(), i, 5000);
      h.advance(5000);
    }
    expect(h.lines).toEqual([
      {
        err: 'no JetStream stream takes fb.obs.gw',
        code: 'FB_EDGE_NO_STREAM',
        attempt: 0,
        retryInMs: 5000,
        msg: 'uplink publish failed; will resend',
      },
    ]);
    h.advance(15_000); // 65 s after the first line
    h.onError(noStream(), 10, 5000);
    expect(h.lines).toHaveLength(2);
    expect(h.lines[1]).toMatchObject({ attempt: 10, repeatedSinceLastLogged: 9 });
  });

  it('logs a different failure at once', () => {
    const h = harness();
    h.onError(noStream(), 0, 100);
    h.onError(new Error('TIMEOUT'), 1, 200);
    h.onError(noStream(), 2, 300);
    expect(h.lines.map((l) => l.err)).toEqual([
      'no JetStream stream takes fb.obs.gw',
      'TIMEOUT',
      'no JetStream stream takes fb.obs.gw',
    ]);
    expect(h.lines[1]).not.toHaveProperty('code');
  });
});
