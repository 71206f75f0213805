/**
 * Peer for the edge benchmark: aedes alone in its own process, in-memory persistence only (nothing
 * durable), listening on 127.0.0.1. Counts client publishes in its `publish` event and prints the
 * count every 100 ms (`count`). Stops on SIGTERM or when stdin closes.
 */
import { createServer } from 'node:net';
import { Aedes } from 'aedes';
import { emit } from './lib/child.js';
import { monoMs } from './lib/stats.js';

async function main(args: { port: number }): Promise<void> {
  const broker = await Aedes.createBroker();
  let n = 0;
  broker.on('publish', (_packet, client) => {
    if (client) n++;
  });
  const server = createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(args.port, '127.0.0.1', () => resolve());
  });
  void emit({ type: 'ready' });
  const tick = setInterval(() => void emit({ type: 'count', n, t: monoMs() }), 100);
  const close = () => {
    clearInterval(tick);
    server.close();
    broker.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.once('SIGTERM', close);
  process.stdin.on('end', close);
  process.stdin.resume();
}

main(JSON.parse(process.argv[2] ?? '{}') as { port: number }).catch((err: Error) => {
  process.stderr.write(`aedes peer: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
