import { createServer } from 'node:net';

/**
 * Ports handed out are below Linux's ephemeral range (32768-60999 by default), where the OS picks the
 * local ports of outgoing connections: a port the OS picked as free could be taken by one of the many
 * client connections of a parallel test before the server meant for it binds it (seen as EADDRINUSE).
 */
const LOW = 15_000;
const HIGH = 32_767;
/** Given out by this process already (each test file runs in one process). */
const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A TCP port that was free on 127.0.0.1 a moment ago, outside the range of outgoing connections. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free port found between ${LOW} and ${HIGH}`);
}
