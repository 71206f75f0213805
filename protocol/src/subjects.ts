/** NATS subjects. One token per id, so ids must not contain `.`, `*`, `>` or whitespace. */

const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** True when `id` can be one subject token (edge ids, dataset names). */
export function isSubjectToken(id: string): boolean {
  return TOKEN.test(id);
}

function token(kind: string, id: string): string {
  if (!isSubjectToken(id)) {
    throw new Error(`${kind} "${id}" is not a valid subject token: use 1-64 of A-Z a-z 0-9 _ -`);
  }
  return id;
}

export const subjects = {
  /** Observation batches from one edge. */
  obs: (edge: string) => `fb.obs.${token('edge id', edge)}`,
  obsAll: 'fb.obs.>',
  /** Edge heartbeats, last value kept per subject. */
  edgeStatus: (edge: string) => `fb.edge.${token('edge id', edge)}.status`,
  edgeStatusAll: 'fb.edge.*.status',
  /** New data committed by ingest. */
  dataAvailable: 'fb.events.data',
  /** A dataset window was (re)built. */
  dataset: (name: string) => `fb.dataset.${token('dataset name', name)}`,
  datasetAll: 'fb.dataset.>',
  /** Control requests to one edge's service (status, sensors, rejects, reload, ping), answered by that edge. */
  control: (edge: string, op: string) => `fb.ctl.${token('edge id', edge)}.${token('control op', op)}`,
  controlAll: (edge: string) => `fb.ctl.${token('edge id', edge)}.>`,
  /**
   * Inbox prefix of a NATS identity (an edge id, or the collector's): its replies, JetStream acks and
   * pull deliveries arrive under it, and its credentials may subscribe under nothing else, so no
   * identity sees another's replies.
   */
  inbox: (identity: string) => `_INBOX.${token('identity', identity)}`,
} as const;

/** The edge id in an observation subject, or undefined when the subject is not one. */
export function edgeOfObsSubject(subject: string): string | undefined {
  const m = /^fb\.obs\.([^.]+)$/.exec(subject);
  return m?.[1];
}

/** The edge id in a heartbeat subject (`fb.edge.<edge>.status`), or undefined when it is not one. */
export function edgeOfStatusSubject(subject: string): string | undefined {
  const m = /^fb\.edge\.([^.]+)\.status$/.exec(subject);
  return m?.[1];
}

/**
 * The `Nats-Msg-Id` of a batch. JetStream de-duplicates per stream, across every edge's subject, so
 * `nonce` must be a secret random value per batch (kept for its resends): an id another edge could
 * predict would let it publish that id first and have the batch dropped as a duplicate.
 */
export function batchMsgId(edge: string, nonce: string, first: number, last: number): string {
  return `${edge}:${nonce}:${first}-${last}`;
}
