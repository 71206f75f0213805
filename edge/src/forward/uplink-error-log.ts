/** The part of a pino logger the uplink error log writes to. */
export interface WarnLog {
  warn(obj: Record<string, unknown>, msg: string): void;
}

export interface UplinkErrorLogOptions {
  /** The same failure is logged again at most this often; its repeats in between are counted. */
  everyMs: number;
  now?: () => number;
}

/**
 * The forwarder's `onError` for an operator: a failure unlike the previous one is logged at once; the
 * same failure again (same code and message) at most once per `everyMs`, saying how many times it
 * happened since it was last logged. A cause that lasts (no stream yet, server down) would otherwise
 * fill the log with one line per retry, hiding everything else.
 */
export function createUplinkErrorLog(
  log: WarnLog,
  opts: UplinkErrorLogOptions,
): (err: unknown, attempt: number, retryInMs: number) => void {
  const now = opts.now ?? Date.now;
  let last: { key: string; at: number } | undefined;
  let repeats = 0;
  return (err, attempt, retryInMs) => {
    const code = (err as { code?: unknown } | null)?.code;
    const message = err instanceof Error ? err.message : String(err);
    const key = `${String(code)}\u0000${message}`;
    const t = now();
    if (last?.key === key && t - last.at < opts.everyMs) {
      repeats++;
      return;
    }
    log.warn(
      {
        err: message,
        ...(typeof code === 'string' ? { code } : {}),
        attempt,
        retryInMs,
        ...(last?.key === key ? { repeatedSinceLastLogged: repeats } : {}),
      },
      'uplink publish failed; will resend',
    );
    last = { key, at: t };
    repeats = 0;
  };
}
