/** Stable error codes of the collector; `retryable` says whether trying again later can help. */
export const CloudErrorCode = {
  CONFIG_INVALID: 'FB_CLOUD_CONFIG_INVALID',
  DATABASE: 'FB_CLOUD_DATABASE',
  /** A route of the HTTP API failed on the server's side; the log has the cause under the answer's `ref`. */
  HTTP_INTERNAL: 'FB_CLOUD_HTTP_INTERNAL',
  /** Postgres refused the data itself (bad value, constraint, size limit): retrying the same rows cannot help. */
  DATA_REFUSED: 'FB_CLOUD_DATA_REFUSED',
} as const;
export type CloudErrorCode = (typeof CloudErrorCode)[keyof typeof CloudErrorCode];

export class CloudError extends Error {
  override name = 'CloudError';
  constructor(
    readonly code: CloudErrorCode,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
