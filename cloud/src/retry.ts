import { CloudError } from './errors.js';

/** The longest wait between two tries of one thing, however often it failed. */
export const MAX_RETRY_DELAY_MS = 300_000;

/**
 * Wait before try `attempt + 1` after `attempt` failed (1 = the first try): `firstMs`, doubling each
 * time, at most `MAX_RETRY_DELAY_MS`. Doubling keeps an outage from turning into a busy loop, and
 * the cap keeps recovery within minutes once it is over.
 */
export function retryDelayMs(attempt: number, firstMs: number): number {
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;
  return Math.min(MAX_RETRY_DELAY_MS, firstMs * 2 ** Math.min(n - 1, 30));
}

/**
 * A failure as a coded error: a `CloudError` as it is, anything else through `classify`, which knows
 * what the failing step was (reading the store, encoding, ...).
 */
export function asCloudError(err: unknown, classify: (err: unknown) => CloudError): CloudError {
  return err instanceof CloudError ? err : classify(err);
}

/** How a coded error reads in logs, dead letters and `last_error`: `CODE: message`. */
export function describeError(err: CloudError): string {
  return `${err.code}: ${err.message}`;
}
