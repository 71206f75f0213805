import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CollectorProcess,
  type NatsServer,
  startCollectorProcess,
  startNatsServer,
  startPostgres,
  type TempDir,
  type TestPostgres,
  tempDir,
  waitFor,
} from '../harness/index.js';

/**
 * A browser that stops reading the console's live updates cannot grow the collector's memory: a
 * client with a tiny receive window (its kernel takes a few kB, then the collector's socket buffer
 * fills) is dropped once its unsent bytes pass FB_CONSOLE_CLIENT_BUFFER, while a client that reads
 * keeps receiving. The fleet changes fast (1,000 simulated edges heartbeating) so that the stream
 * carries megabytes per second.
 */
const EDGES = 1000;
const BOUND = 65_536;

let nats: NatsServer;
let postgres: TestPostgres;
let dir: TempDir;
let collector: CollectorProcess;
let nc: NatsConnection;
let beating: NodeJS.Timeout | undefined;

/** A client in another process with SO_RCVBUF at its minimum; it reads nothing until told to on stdin. */
const STUCK_CLIENT = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect(('127.0.0.1', int(sys.argv[1])))
s.sendall(b'GET /console/events HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nAccept: text/event-stream\\r\\n\\r\\n')
print('connected', flush=True)
sys.stdin.readline()
s.settimeout(10)
total = 0
try:
    while True:
        b = s.recv(65536)
        if not b:
            print('eof', total, flush=True)
            break
        total += len(b)
except ConnectionResetError:
    print('reset', total, flush=True)
except socket.timeout:
    print('open', total, flush=True)
`;

function status(edge: string, n: number) {
  return JSON.stringify({
    v: 1,
    edge,
    time: new Date().toISOString(),
    // A long version makes each fleet row (and so the stream) large.
    version: `1.0.0+${'x'.repeat(150)}`,
    uptimeS: n,
    buffer: { depth: n, bytes: n * 100, capacityBytes: 1e9, oldestUnsentAgeS: n, dropped: 0 },
    rates: { inPerS: n % 7, outPerS: n % 5 },
    rejected: 0,
    diskFreeBytes: 1e9,
    clock: 'synced',
    uplink: 'connected',
    intervalMs: 500,
  });
}

beforeAll(async () => {
  dir = tempDir();
  [nats, postgres] = await Promise.all([startNatsServer(), startPostgres()]);
  collector = await startCollectorProcess({
    name: 'console-slow',
    natsUrl: nats.url,
    databaseUrl: postgres.url,
    dataDir: join(dir.path, 'c'),
    env: {
      FB_IDENTITY_DIR: join(dir.path, 'identity'),
      FB_CONSOLE_PUSH_MS: '250',
      FB_CONSOLE_CLIENT_BUFFER: String(BOUND),
    },
  });
  nc = await connect({ servers: nats.url });
  let n = 0;
  const beat = () => {
    n++;
    for (let i = 0; i < EDGES; i++) {
      const edge = `sim-${String(i).padStart(4, '0')}`;
      nc.publish(`fb.edge.${edge}.status`, status(edge, n));
    }
  };
  beat();
  beating = setInterval(beat, 400);
  await waitFor('the simulated fleet in the registry', async () => {
    const r = await fetch(`http://127.0.0.1:${collector.httpPort}/console/api/fleet`);
    const f = (await r.json()) as { edges: unknown[] };
    return f.edges.length === EDGES ? true : undefined;
  });
});

afterAll(async () => {
  clearInterval(beating);
  await nc?.close();
  await collector?.stop();
  await Promise.all([nats?.close(), postgres?.close()]);
  dir?.remove();
});

const metric = async (name: string) => (await collector.metrics())?.get(name) ?? 0;

describe('console live updates: a client that stops reading', () => {
  it('is dropped at its bound while a reading client keeps receiving, and the collector does not grow', async () => {
    let received = 0;
    let events = 0;
    const reader = request(
      {
        host: '127.0.0.1',
        port: collector.httpPort,
        path: '/console/events',
        headers: { accept: 'text/event-stream' },
      },
      (res) => {
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          events += chunk.toString().split('event: fleet').length - 1;
        });
        res.on('error', () => {});
      },
    );
    reader.on('error', () => {});
    reader.end();
    await waitFor('the reading client', async () =>
      (await metric('fb_cloud_console_clients')) === 1 ? true : undefined,
    );
    const rssBefore = await metric('process_resident_memory_bytes');

    const stuck: ChildProcessWithoutNullStreams = spawn('python3', [
      '-c',
      STUCK_CLIENT,
      String(collector.httpPort),
    ]);
    let out = '';
    stuck.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await waitFor('the stuck client connected', () => (out.includes('connected') ? true : undefined));

    const dropped = await waitFor(
      'the stuck client dropped',
      async () =>
        (await metric('fb_cloud_console_clients_dropped_total{reason="slow"}')) >= 1 ? true : undefined,
      90_000,
    );
    expect(dropped).toBe(true);
    // Only the stuck client was dropped: the reader is still connected and still receiving.
    expect(await metric('fb_cloud_console_clients')).toBe(1);
    const before = received;
    await waitFor('more events for the reading client', () => (received > before ? true : undefined));
    expect(events).toBeGreaterThan(1);
    // The stream delivered far more than the bound meanwhile; what the collector holds did not grow with it.
    expect(received).toBeGreaterThan(20 * BOUND);
    const rssAfter = await metric('process_resident_memory_bytes');
    expect(rssAfter - rssBefore).toBeLessThan(64 * 1024 * 1024);

    // When the stuck client reads at last, the collector has closed its stream: it gets what was in the
    // kernel's buffers and then the end, never an ever-growing backlog.
    stuck.stdin.write('read\n');
    const line = await waitFor(
      'the stuck client to finish',
      () => /(eof|reset|open) \d+/.exec(out)?.[0],
      30_000,
    );
    expect(line).toMatch(/^(eof|reset) /);
    reader.destroy();
    stuck.kill();
  });

  it('ends every stream when the collector stops, and the collector exits by itself', async () => {
    let ended = false;
    const reader = request(
      {
        host: '127.0.0.1',
        port: collector.httpPort,
        path: '/console/events',
        headers: { accept: 'text/event-stream' },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          ended = true;
        });
        res.on('error', () => {});
      },
    );
    reader.on('error', () => {});
    reader.end();
    await waitFor('the client', async () =>
      (await metric('fb_cloud_console_clients')) === 1 ? true : undefined,
    );
    clearInterval(beating);
    await collector.stop();
    // SIGTERM's own exit (0), not the SIGKILL that follows a grace period spent waiting on a stream.
    expect(collector.process?.child.exitCode).toBe(0);
    expect(collector.process?.child.signalCode).toBeNull();
    await waitFor('the stream ended', () => (ended ? true : undefined));
  });
});
