import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Observation } from '@fieldbeam/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { createIssSource, type IssSource, type IssSourceStatus } from '../../edge/src/iss/iss-source.js';
import { runIssReplayCommand } from '../../edge/src/iss-replay/replay-command.js';
import {
  createTlcpReplayServer,
  type TlcpReplayServer,
} from '../../edge/src/iss-replay/tlcp-replay-server.js';
import {
  clock,
  duplicates,
  type Expected,
  expected,
  issClock,
  line,
  memorySink,
  sleep,
  waitFor,
} from './iss-harness.js';

/**
 * IssSource with the real lightstreamer-client-node against our TLCP replay server on a random
 * loopback port. Every update the server publishes must become exactly one observation with the
 * id computed independently here; faults (dropped socket, restart, blackhole, refused port) must
 * not duplicate or lose any reading the server had sent.
 */

const ITEMS = ['USLAB000058', 'USLAB000059', 'NODE3000005', 'USLAB000081', 'S0000003'];

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function startServer(keepaliveMs = 1_000): Promise<TlcpReplayServer> {
  const server = await createTlcpReplayServer({ keepaliveMs });
  cleanups.push(() => server.close());
  return server;
}

function startSource(server: TlcpReplayServer, extra: Partial<Parameters<typeof createIssSource>[0]> = {}) {
  const sink = memorySink();
  const statuses: IssSourceStatus[] = [];
  const source: IssSource = createIssSource({
    serverUrl: server.url,
    items: ITEMS,
    edge: 'edge-test',
    sink,
    onStatus: (s) => statuses.push(s),
    ...extra,
  });
  cleanups.push(() => source.close());
  return { source, sink, statuses };
}

/** Publishes one update per item, round robin, and returns what each must become. */
function publisher(server: TlcpReplayServer, next: () => number) {
  let n = 0;
  const published: Expected[] = [];
  return {
    published,
    publish(count: number) {
      for (let i = 0; i < count; i++, n++) {
        const item = ITEMS[n % ITEMS.length] as string;
        const at = next();
        const value = item === 'USLAB000081' ? String(n % 2) : (700 + n / 7).toFixed(9);
        server.publish([line(item, value, at)]);
        published.push(expected(item, value, at));
      }
    },
  };
}

const idsOf = (list: ReadonlyArray<{ id: string }>) => new Set(list.map((o) => o.id));

describe('IssSource against the TLCP replay server', () => {
  it('quarantines bad updates (unknown item, unreadable TimeStamp, oversize value) and keeps going', async () => {
    const server = await startServer();
    const next = issClock();
    const t0 = next();
    server.publish([clock(t0)]);
    const rejects: { topic: string; reason: string }[] = [];
    const { source, sink } = startSource(server, {
      items: [...ITEMS, 'NOTANITEM0001'],
      rejects: { reject: (r) => rejects.push(r) },
    });
    await waitFor('the connection', () => source.status().subscribed);
    server.publish([
      line('NOTANITEM0001', '1', next()),
      line('USLAB000058', '5', next(), { TimeStamp: 'yesterday-ish' }),
      line('USLAB000059', 'x'.repeat(5000), next()),
    ]);
    const good = next();
    server.publish([line('NODE3000005', '42', good)]);
    await waitFor('the good update', () => sink.observations.length === 1);
    await waitFor('three quarantined updates', () => rejects.length === 3);
    expect(sink.observations[0]?.value).toBe(42);
    expect(source.status().rejected).toBe(3);
    const reasons = rejects.map((r) => `${r.topic}: ${r.reason}`).join('\n');
    expect(reasons).toMatch(/NOTANITEM0001: unknown ISSLIVE item/);
    expect(reasons).toMatch(/USLAB000058: unreadable TimeStamp "yesterday-ish"/);
    expect(reasons).toMatch(/USLAB000059: Value of 5000 characters exceeds 1024/);
  });

  it('turns every update into exactly the expected observation', async () => {
    const server = await startServer();
    const next = issClock();
    // State before the client comes: the snapshot carries it.
    const t0 = next();
    server.publish([clock(t0), ...ITEMS.map((item, i) => line(item, String(10 + i), t0))]);
    const { source, sink } = startSource(server);

    const want: Expected[] = ITEMS.map((item, i) => expected(item, String(10 + i), t0));
    await waitFor('the snapshot', () => sink.observations.length === ITEMS.length);

    // Values that exercise the delta encoding: text with separators, escapes and markers,
    // unchanged fields, null and empty status fields, a float32 printed at double precision.
    const cases: Array<[string, string, Record<string, string | null>?]> = [
      ['USLAB000058', '742.997924804688'],
      ['USLAB000059', 'Data|with,meta%chars'],
      ['NODE3000005', '#1 $x ^2'],
      ['USLAB000081', '1', { 'Status.Indicator': null }],
      ['S0000003', '-0.000244140625', { 'Status.Color': '' }],
      ['USLAB000058', '742.997924804688'], // same value, new time: a new reading
      ['USLAB000059', '°C\r\nnext line'],
      ['NODE3000005', '1.22336e+09'],
    ];
    for (const [item, value, over] of cases) {
      const at = next();
      server.publish([line(item, value, at, over)]);
      want.push(expected(item, value, at));
    }
    await waitFor('every update', () => sink.observations.length === want.length);
    await sleep(300); // nothing more may come

    expect(sink.observations).toHaveLength(want.length);
    expect(duplicates(sink.observations)).toEqual([]);
    const byId = new Map(sink.observations.map((o) => [o.id, o]));
    for (const w of want) {
      const o = byId.get(w.id);
      expect(o, `${w.variable} ${w.time}`).toBeDefined();
      expect(o).toMatchObject({ ...w, source: 'isslive', station: 'ISS', edge: 'edge-test' });
      if (w.text === undefined) expect(o?.text).toBeUndefined();
      expect(Observation.safeParse(o).success).toBe(true);
    }
    const cabin = sink.observations.find((o) => o.variable === 'iss:USLAB000058');
    expect(cabin?.unit).toBe('mmHg'); // tlcp.md §8.3, not the catalogue's PSI
    expect(cabin?.quality).toEqual(['status_class:24', 'status_color:Green']);
    expect(sink.observations.find((o) => o.text === 'Data|with,meta%chars')?.unit).toBe('degC');
    const nullIndicator = byId.get(want.at(-5)?.id ?? '');
    expect(nullIndicator?.quality).toEqual(['status_class:24', 'status_color:Green']);

    const status = source.status();
    expect(status).toMatchObject({
      connected: true,
      subscribed: true,
      signal: 'acquired',
      committed: want.length,
    });
    expect(status.updates).toBe(want.length + 1); // + the clock's snapshot
  });

  it('resumes after a dropped socket, a restart and a blackhole without duplicating or losing a reading', async () => {
    const server = await startServer(1_000);
    const next = issClock();
    server.publish(clock(next()));
    const { source, sink } = startSource(server);
    const pub = publisher(server, next);
    const allArrived = () => pub.published.every((w) => idsOf(sink.observations).has(w.id));
    await waitFor('the subscription', () => source.status().subscribed);

    pub.publish(10);
    await waitFor('the first updates', allArrived);

    // Dropped socket: the session survives, the client recovers it over HTTP and gets what it missed.
    server.dropConnections();
    pub.publish(10);
    await sleep(50);
    pub.publish(10);
    await waitFor('updates sent across the dropped socket', allArrived);
    expect(server.stats()).toMatchObject({ sessionsCreated: 1, requests: { httpRecovery: 1 } });

    // Restart: sessions are gone, the client opens a new one and gets a fresh snapshot of the
    // latest values, whose ids it has already seen.
    const duplicatesBefore = source.status().duplicates;
    await server.restart({ downMs: 500 });
    await waitFor('a new session', () => server.stats().sessionsCreated === 2 && source.status().subscribed);
    await waitFor(
      'the re-sent snapshot',
      () => source.status().duplicates >= duplicatesBefore + ITEMS.length,
    );
    pub.publish(10);
    await waitFor('updates after the restart', allArrived);

    // Blackhole: the socket stays open but nothing flows, not even PROBE. The client declares the
    // stream stalled (keep-alive + 5 s), recovers once the server answers again, and the updates
    // "sent" into the void come from the session's log.
    const recoveriesBefore = server.stats().requests.httpRecovery;
    await server.setMode('silent');
    pub.publish(10);
    await sleep(7_500);
    pub.publish(5);
    await server.setMode('normal');
    await waitFor('updates sent into the blackhole', allArrived, 30_000);
    // The client noticed the stall (no PROBE either) and recovered the same session.
    expect(server.stats().requests.httpRecovery).toBeGreaterThan(recoveriesBefore);
    expect(server.stats().sessionsCreated).toBe(2);
    pub.publish(5);
    await waitFor('updates after the blackhole', allArrived);
    await sleep(300);

    expect(duplicates(sink.observations)).toEqual([]);
    expect(idsOf(sink.observations)).toEqual(idsOf(pub.published));
    expect(source.status()).toMatchObject({ connected: true, dropped: 0, refusals: 0 });
  }, 60_000);

  it('reconnects over the HTTP create path after connections were refused', async () => {
    const server = await startServer(1_000);
    const next = issClock();
    server.publish(clock(next()));
    // No session recovery: the client goes straight for a new session, finds the port closed, marks
    // WebSocket as suspended, and from then on creates sessions over HTTP (tlcp.md §7.1).
    const { source, sink } = startSource(server, {
      connection: { sessionRecoveryTimeoutMs: 0, retryDelayMs: 1_000 },
    });
    const pub = publisher(server, next);
    const allArrived = () => pub.published.every((w) => idsOf(sink.observations).has(w.id));
    await waitFor('the subscription', () => source.status().subscribed);
    pub.publish(5);
    await waitFor('the first updates', allArrived);
    expect(server.stats().requests).toMatchObject({ wsCreate: 1, httpCreate: 0 });

    await server.setMode('refuse');
    await waitFor('the client to notice', () => !source.status().connected);
    await sleep(2_500);
    pub.publish(5); // only the latest per item can arrive: there is no session to log them in
    await server.setMode('normal');
    await waitFor(
      'a new session',
      () => source.status().subscribed && server.stats().sessionsCreated >= 2,
      30_000,
    );
    pub.publish(5);
    const latestBefore = pub.published.slice(5, 10).slice(-ITEMS.length);
    const after = pub.published.slice(10);
    await waitFor('updates after reconnecting', () =>
      [...latestBefore, ...after].every((w) => idsOf(sink.observations).has(w.id)),
    );
    expect(duplicates(sink.observations)).toEqual([]);
    expect(server.stats().requests.httpCreate).toBeGreaterThanOrEqual(1);
    expect(server.stats().requests.wsBind).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('works over HTTP streaming too (control.txt, streaming bind, recovery)', async () => {
    const server = await startServer(1_000);
    const next = issClock();
    server.publish(clock(next()));
    const { source, sink } = startSource(server, { connection: { forcedTransport: 'HTTP-STREAMING' } });
    const pub = publisher(server, next);
    const allArrived = () => pub.published.every((w) => idsOf(sink.observations).has(w.id));
    await waitFor('the subscription', () => source.status().subscribed);
    expect(source.status().connection).toBe('CONNECTED:HTTP-STREAMING');
    pub.publish(10);
    await waitFor('updates over HTTP', allArrived);
    server.dropConnections();
    pub.publish(10);
    await waitFor('updates across the dropped stream', allArrived);
    expect(duplicates(sink.observations)).toEqual([]);
    expect(server.stats()).toMatchObject({ sessionsCreated: 1, requests: { wsCreate: 0, httpControl: 1 } });
    expect(server.stats().requests.httpRecovery).toBeGreaterThanOrEqual(1);
  });

  it('keeps retrying when the server refuses the session for good', async () => {
    // CONERR 2 (adapter set unavailable) is terminal for the client; the source tries again itself.
    const server = await createTlcpReplayServer({ adapterSet: 'SOMETHING_ELSE' });
    cleanups.push(() => server.close());
    const { source } = startSource(server, { connection: { reconnectMinMs: 100, reconnectMaxMs: 200 } });
    await waitFor(
      'repeated attempts',
      () => source.status().resets >= 3 && server.stats().sessionsCreated === 0,
    );
    expect(source.status()).toMatchObject({
      connected: false,
      lastError: expect.stringMatching(/server error 2:/),
    });
  });

  it('starts over when the feed stays stale, and picks up once the server answers', async () => {
    const server = await startServer(1_000);
    const next = issClock();
    server.publish(clock(next()));
    const { source, sink } = startSource(server, { connection: { staleAfterMs: 1_500 } });
    await waitFor('the subscription', () => source.status().subscribed);
    await server.setMode('silent');
    await waitFor('a watchdog reset', () => source.status().resets >= 1, 10_000);
    await server.setMode('normal');
    const pub = publisher(server, next);
    await waitFor('a new subscription', () => source.status().subscribed, 20_000);
    pub.publish(5);
    await waitFor(
      'readings again',
      () => pub.published.every((w) => idsOf(sink.observations).has(w.id)),
      20_000,
    );
  }, 40_000);

  it('keeps a quiet session alive with PROBE', async () => {
    const server = await startServer(300);
    server.publish(clock(issClock()()));
    // A client that calls the stream stalled 1 s after the keep-alive is due.
    const { source } = startSource(server, {
      connection: { stalledTimeoutMs: 500, reconnectTimeoutMs: 500 },
    });
    await waitFor('the subscription', () => source.status().subscribed);
    await sleep(3_000); // no data at all, ten keep-alive periods
    expect(source.status().connection).toBe('CONNECTED:WS-STREAMING');
    expect(server.stats()).toMatchObject({ sessionsCreated: 1, requests: { httpRecovery: 0, wsBind: 0 } });
  });

  it('refuses an unusable configuration with a message that says what to fix', () => {
    const base = { edge: 'e', sink: memorySink() };
    expect(() => createIssSource({ ...base, serverUrl: 'push.lightstreamer.com' })).toThrow(
      /"push\.lightstreamer\.com" is not usable .*http\(s\):\/\/host/,
    );
    expect(() =>
      createIssSource({ ...base, serverUrl: 'http://127.0.0.1:1', items: ['USLAB000058 X'] }),
    ).toThrow(/letters, digits and _ .*not: USLAB000058 X/);
  });

  it('holds readings back while the ISS has no signal', async () => {
    const server = await startServer();
    const next = issClock();
    server.publish(clock(next()));
    const { source, sink, statuses } = startSource(server);
    const pub = publisher(server, next);
    pub.publish(5);
    await waitFor('readings with signal', () => sink.observations.length === 5);

    server.publish(clock(next(), false));
    await waitFor('loss of signal', () => source.status().signal === 'lost');
    pub.publish(5);
    await waitFor('the updates to be received', () => source.status().suppressed === 5);
    await sleep(200);
    expect(sink.observations).toHaveLength(5);

    server.publish(clock(next(), true));
    await waitFor('signal back', () => source.status().signal === 'acquired');
    pub.publish(5);
    await waitFor('readings again', () => sink.observations.length === 10);
    expect(idsOf(sink.observations)).toEqual(
      idsOf([...pub.published.slice(0, 5), ...pub.published.slice(10)]),
    );
    const signals = statuses.map((s) => s.signal).filter((s, i, all) => s !== all[i - 1]);
    expect(signals).toEqual(['unknown', 'acquired', 'lost', 'acquired']);
  });

  it('keeps the latest reading per item while the buffer refuses, and counts what it replaced', async () => {
    const server = await startServer();
    const next = issClock();
    server.publish(clock(next()));
    const { source, sink } = startSource(server, { queue: { retryMinMs: 50, retryMaxMs: 100 } });
    const pub = publisher(server, next);
    pub.publish(5);
    await waitFor('readings', () => sink.observations.length === 5);

    sink.full = true;
    pub.publish(15); // three per item
    await waitFor('refusals', () => source.status().refusals >= 2 && source.status().updates >= 21);
    sink.full = false;
    await waitFor('the queue to drain', () => source.status().queued === 0 && sink.observations.length >= 10);
    await sleep(200);

    const latest = pub.published.slice(-ITEMS.length);
    expect(idsOf(sink.observations)).toEqual(idsOf([...pub.published.slice(0, 5), ...latest]));
    expect(source.status()).toMatchObject({ dropped: 10, committed: 10 });
  });

  it('unsubscribes and disconnects cleanly on close', async () => {
    const server = await startServer();
    server.publish(clock(issClock()()));
    const { source } = startSource(server);
    await waitFor('the subscription', () => source.status().subscribed);
    await source.close();
    await source.close(); // idempotent
    await waitFor('the session to be destroyed', () => server.stats().sessions === 0, 5_000);
    expect(source.status().connection).toBe('DISCONNECTED');
  });

  it('leaves nothing running: a process using server and source exits by itself after close', () => {
    const script = fileURLToPath(new URL('./fixtures/close-and-exit.ts', import.meta.url));
    const run = spawnSync(process.execPath, ['--import', 'tsx', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.error).toBeUndefined();
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('observations');
    expect(run.status).toBe(0);
  }, 40_000);

  it('serves a replay file through the iss-replay command until stopped', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fb-iss-replay-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const next = issClock();
    const t0 = next();
    const t1 = t0 + 3_000; // played 3 s after start: the client is subscribed by then
    const lines = [clock(t0), ...ITEMS.map((item, i) => line(item, String(i), t0))];
    lines.push(clock(t1), ...ITEMS.map((item, i) => line(item, `${i}.5`, t1)));
    const file = join(dir, 'replay.jsonl');
    await writeFile(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);

    const stop = new AbortController();
    const printed: string[] = [];
    const exit = runIssReplayCommand(['--port', '0', '--file', file, '--keepalive', '1000'], {
      out: (l) => printed.push(l),
      err: (l) => printed.push(`ERR ${l}`),
      signal: stop.signal,
    });
    cleanups.push(async () => {
      stop.abort();
      await exit;
    });
    await waitFor('the URL', () => printed.some((l) => l.includes('http://127.0.0.1:')));
    const url = /http:\/\/127\.0\.0\.1:\d+/.exec(printed.join('\n'))?.[0] ?? '';
    const sink = memorySink();
    const source = createIssSource({ serverUrl: url, items: ITEMS, edge: 'edge-test', sink });
    cleanups.push(() => source.close());

    const want = [
      ...ITEMS.map((item, i) => expected(item, String(i), t0)),
      ...ITEMS.map((item, i) => expected(item, `${i}.5`, t1)),
    ];
    await waitFor('the replayed readings', () => sink.observations.length === want.length, 10_000);
    expect(idsOf(sink.observations)).toEqual(idsOf(want));
    await source.close();
    stop.abort();
    expect(await exit).toBe(0);
    expect(printed.at(-1)).toBe('ISSLIVE replay server stopped');
  });
});
