import { CloudError, CloudErrorCode } from '../errors.js';

/** SQLSTATE of a unique violation: ingest's replay path handles it, so it is never the data's fault here. */
export const UNIQUE_VIOLATION = '23505';

/** The SQLSTATE of a Postgres error, if it is one. */
export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * True when Postgres refused the rows themselves, so sending the same rows again fails again: data
 * exceptions (class 22: bad value, out of range, NUL in text), integrity violations (class 23) other
 * than the unique violation, and program limits (class 54: a row or value too large). Anything else
 * (a lost connection, a shutdown, a lock timeout, no disk) may pass on a later try.
 */
export function isDataError(err: unknown): boolean {
  const code = sqlState(err);
  if (code === undefined || code === UNIQUE_VIOLATION) return false;
  const cls = code.slice(0, 2);
  return cls === '22' || cls === '23' || cls === '54';
}

/** A database failure as a coded error: `DATA_REFUSED` (not retryable) or `DATABASE` (retryable). */
export function databaseError(err: unknown, doing: string): CloudError {
  if (err instanceof CloudError) return err;
  const message = (err as Error | undefined)?.message ?? String(err);
  const code = sqlState(err);
  const detail = code ? `${message} (SQLSTATE ${code})` : message;
  return isDataError(err)
    ? new CloudError(CloudErrorCode.DATA_REFUSED, `Postgres refused ${doing}: ${detail}`, false, {
        cause: err,
      })
    : new CloudError(CloudErrorCode.DATABASE, `${doing} failed: ${detail}`, true, { cause: err });
}
