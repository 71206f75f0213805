import type { NatsConnection } from '@nats-io/transport-node';

/**
 * How long a NATS connection is given to drain at shutdown before it is closed. A drain waits for the
 * server's answer, and through a blackholed uplink (packets vanish, the usual cellular failure) none
 * comes: without a bound the agent would sit until its service manager kills it.
 */
export const DRAIN_BOUND_MS = 2000;

/**
 * Waits for `work` at most `ms`; true when it settled in time (whether it resolved or failed). The
 * work itself goes on: the caller ends it (usually by closing the connection it waits on).
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const done = work.then(
    () => true as const,
    () => true as const,
  );
  try {
    return await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Drains `nc` (what it published reaches the server, its subscriptions end) for at most `ms`, then
 * closes it, which does not wait on the network. False when the drain did not finish in time.
 */
export async function drainThenClose(nc: NatsConnection, ms = DRAIN_BOUND_MS): Promise<boolean> {
  if (nc.isClosed()) return true;
  const drained = await settlesWithin(nc.drain(), ms);
  if (!nc.isClosed()) await nc.close().catch(() => undefined);
  return drained;
}
