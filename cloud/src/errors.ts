/** Stable error codes of the collector; `retryable` says whether trying again later can help. */
export const CloudErrorCode = {
  CONFIG_INVALID: 'FB_CLOUD_CONFIG_INVALID',
  DATABASE: 'FB_CLOUD_DATABASE',
  /** A route of the HTTP API failed on the server's side; the log has the cause under the answer's `ref`. */
  HTTP_INTERNAL: 'FB_CLOUD_HTTP_INTERNAL',
  /** Postgres refused the data itself (bad value, constraint, size limit): retrying the same rows cannot help. */
  DATA_REFUSED: 'FB_CLOUD_DATA_REFUSED',
  /** No NATS server answered at NATS_URL (refused, unknown host, timeout): it may be up later. */
  NATS_UNREACHABLE: 'FB_CLOUD_NATS_UNREACHABLE',
  /** A message on a stream is not what the protocol says (bad JSON, schema): set aside, never retried. */
  MESSAGE_INVALID: 'FB_CLOUD_MESSAGE_INVALID',
  /** The object store could not be reached or failed the request: a later try may pass. */
  OBJECT_STORE: 'FB_CLOUD_OBJECT_STORE',
  /** A dataset version's object is not in the object store: it stays missing until the window is rebuilt. */
  EXPORT_INPUT_MISSING: 'FB_CLOUD_EXPORT_INPUT_MISSING',
  /** A dataset version's object is not what was announced (checksum, rows) or cannot be decoded. */
  EXPORT_INPUT_INVALID: 'FB_CLOUD_EXPORT_INPUT_INVALID',
  /** An exporter's encoder (GeoParquet) failed on the data itself: the same data fails the same way. */
  EXPORT_ENCODE: 'FB_CLOUD_EXPORT_ENCODE',
  /** The dataset named by a window or version is not in this collector's datasets file (any more). */
  DATASET_UNKNOWN: 'FB_CLOUD_DATASET_UNKNOWN',
  /** Turning a window's rows into its Arrow object failed on the data itself. */
  BUILD_ENCODE: 'FB_CLOUD_BUILD_ENCODE',
  /** `edge add` was given a bad argument or input (nothing was registered or written): fix it and run it again. */
  EDGE_ADD_INVALID: 'FB_CLOUD_EDGE_ADD_INVALID',
  /** No edge answers its control subjects (it is not connected to NATS): a retry helps once it is back. */
  EDGE_NOT_CONNECTED: 'FB_CLOUD_EDGE_NOT_CONNECTED',
  /** The edge took the control request but did not answer in time (busy, slow link): a retry may pass. */
  EDGE_TIMEOUT: 'FB_CLOUD_EDGE_TIMEOUT',
  /** The edge refused the control request (bad request, or for reload its invalid config file): the same fails again. */
  EDGE_REFUSED: 'FB_CLOUD_EDGE_REFUSED',
  /** The edge failed while answering a control request (its own error): a later try may pass. */
  EDGE_FAILED: 'FB_CLOUD_EDGE_FAILED',
  /** The edge's answer is not what the protocol says (another agent version?): retrying gets the same. */
  EDGE_REPLY_INVALID: 'FB_CLOUD_EDGE_REPLY_INVALID',
  /** An edge command named an edge neither registered (`edge add`) nor ever seen by the fleet registry. */
  EDGE_UNKNOWN: 'FB_CLOUD_EDGE_UNKNOWN',
  /** A central sensor config refused by the edges' schema (`sensors add`, `promote`): nothing was written. */
  SENSOR_CONFIG_INVALID: 'FB_CLOUD_SENSOR_CONFIG_INVALID',
  /** A central sensor key kept changing under concurrent writers: running the command again helps. */
  SENSOR_CONFIG_CONFLICT: 'FB_CLOUD_SENSOR_CONFIG_CONFLICT',
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
