import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './ports.js';

export type ProxyMode = 'pass' | 'refuse' | 'blackhole';

export interface TcpProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  /**
   * `pass`: forward both ways. `refuse`: drop open connections and refuse new ones (RST), like a
   * host that is down. `blackhole`: keep connections and accept new ones but forward nothing, like a
   * cable cut behind a router: the peers only notice through their own timeouts.
   */
  setMode(mode: ProxyMode): Promise<void>;
  close(): Promise<void>;
}

/** A controllable TCP proxy on loopback in front of `target`, to cut or blackhole an uplink in tests. */
export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const port = await freePort();
  let mode: ProxyMode = 'pass';
  const pairs = new Set<[Socket, Socket]>();
  let server: Server | undefined;

  const onConnection = (client: Socket) => {
    const upstream = connect(targetPort, targetHost);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const forward = (from: Socket, to: Socket) =>
      from.on('data', (chunk) => {
        if (mode === 'pass') to.write(chunk);
        // blackhole: bytes vanish
      });
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  };

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer(onConnection);
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
  const unlisten = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      server = undefined;
    });
  const dropAll = () => {
    for (const [a, b] of pairs) {
      a.resetAndDestroy();
      b.destroy();
    }
    pairs.clear();
  };

  await listen();
  return {
    port,
    get mode() {
      return mode;
    },
    async setMode(next) {
      if (next === mode) return;
      const prev = mode;
      mode = next;
      if (next === 'refuse') {
        const closed = unlisten();
        dropAll();
        await closed;
      } else if (prev === 'refuse') {
        await listen();
      } else if (next === 'pass' && prev === 'blackhole') {
        // Connections that lived through the blackhole have lost bytes mid-stream: a real network
        // would have retransmitted them, here they are gone, so end those connections.
        dropAll();
      }
    },
    async close() {
      mode = 'refuse';
      const closed = unlisten();
      dropAll();
      await closed;
    },
  };
}
