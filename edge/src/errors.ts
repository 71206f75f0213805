/** Stable error codes of the edge agent; `retryable` says whether trying again later can help. */
export const EdgeErrorCode = {
  CONFIG_INVALID: 'FB_EDGE_CONFIG_INVALID',
  BUFFER_FULL: 'FB_EDGE_BUFFER_FULL',
  BUFFER_CLOSED: 'FB_EDGE_BUFFER_CLOSED',
  /** The buffer's thread failed or ended on its own: the agent stops (its service manager starts it again). */
  BUFFER_THREAD: 'FB_EDGE_BUFFER_THREAD',
  UPLINK: 'FB_EDGE_UPLINK',
  /** NATS answered a publish with "no responders": no JetStream stream takes the subject (yet). */
  NO_STREAM: 'FB_EDGE_NO_STREAM',
  /** A command cannot read the agent's config or buffer as the user running it (run it as root or the service user). */
  ACCESS_DENIED: 'FB_EDGE_ACCESS_DENIED',
} as const;
export type EdgeErrorCode = (typeof EdgeErrorCode)[keyof typeof EdgeErrorCode];

export class EdgeError extends Error {
  override name = 'EdgeError';
  constructor(
    readonly code: EdgeErrorCode,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** An unusable config file. `problems` holds each problem as `<path>: <what is wrong>`, all at once. */
export class EdgeConfigError extends EdgeError {
  override name = 'EdgeConfigError';
  constructor(
    readonly problems: readonly string[],
    heading = 'invalid edge config',
    options?: { cause?: unknown },
  ) {
    super(EdgeErrorCode.CONFIG_INVALID, `${heading}:\n  ${problems.join('\n  ')}`, false, options);
  }
}
