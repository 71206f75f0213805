import {
  type AcceptedTimeRange,
  batchLimits,
  batchV2Limits,
  checkValue,
  decodeBatchV2,
  decodeMessage,
  edgeOfObsSubject,
  fastValidEnvelope,
  fastValidObservation,
  isBatchV2,
  mayHoldUnstorableText,
  Observation,
  type ObservationBatch,
  ObservationBatchEnvelope,
  ObservationBatchV2Envelope,
  observationId,
  timeRangeProblem,
} from '@fieldbeam/protocol';

/**
 * Why ingest set something aside, as the `reason` label of the dead-letter metric: `message` (the
 * whole message is unusable), `schema`, `text` (a string Postgres cannot store), `time_invalid` (not a
 * real date), `time_range` (outside the accepted range), `id_mismatch` (the id is not the one its
 * fields give), `database` (Postgres refused it although validation passed).
 */
export type RejectKind =
  | 'message'
  | 'schema'
  | 'text'
  | 'time_invalid'
  | 'time_range'
  | 'id_mismatch'
  | 'database';

/** One observation of an otherwise usable batch that is set aside, with its reason. */
export interface RejectedObservation {
  index: number;
  observation: unknown;
  kind: RejectKind;
  reason: string;
}

export type BatchCheck =
  | { ok: false; reason: string }
  /** `batch.observations` holds only the good observations (possibly none); `rejected` the others. */
  | { ok: true; batch: ObservationBatch; rejected: RejectedObservation[] };

/**
 * The accepted times of one round as ISO strings: every wire time has one fixed-length form, so
 * comparing the strings compares the instants, at no cost per observation.
 */
export interface TimeWindow {
  nowMs: number;
  range: AcceptedTimeRange;
  from: string;
  to: string;
}

export function timeWindow(nowMs: number, range: AcceptedTimeRange): TimeWindow {
  return {
    nowMs,
    range,
    from: new Date(Math.max(0, nowMs - range.maxAgeMs)).toISOString(),
    to: new Date(Math.min(253_402_300_799_999, nowMs + range.maxFutureMs)).toISOString(),
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Checks one message in two layers. The envelope (subject, JSON, version, edge, sequence) decides for
 * the whole message: when it fails, the message goes to dead letters whole. Then each observation is
 * checked on its own (schema, strings Postgres can store, real dates, the accepted time range, its id
 * recomputed from its fields), and only the failing ones are set aside, so one bad reading never holds
 * back the rest of its batch. The common case takes the hand-written checks; anything they do not
 * pass goes through the zod schema, which has the last word and says what is wrong.
 */
export function checkBatch(subject: string, data: Uint8Array, window: TimeWindow): BatchCheck {
  const edge = edgeOfObsSubject(subject);
  if (!edge) return { ok: false, reason: `subject ${subject} is not fb.obs.<edge>` };
  let raw: unknown;
  let json: string;
  /** v2: the observations whose ids were sent (the others' ids were computed from their fields). */
  let sentIds: ReadonlySet<number> | undefined;
  if (isBatchV2(data)) {
    // Bounded by its observations, its bytes and its bytes once decompressed (decodeBatchV2).
    const decoded = decodeBatchV2(data);
    if (!decoded.ok) return decoded;
    raw = decoded.envelope;
    json = decoded.json;
    sentIds = decoded.sentIds;
  } else {
    // No edge sends more (its forwarder cuts batches below the limit): a larger one is not a batch of ours.
    if (data.byteLength > batchLimits.maxBytes) {
      return {
        ok: false,
        reason: `batch of ${data.byteLength} bytes is over the protocol's limit of ${batchLimits.maxBytes} bytes`,
      };
    }
    try {
      json = utf8.decode(data);
      raw = JSON.parse(json);
    } catch {
      // Not UTF-8 or not JSON: decodeMessage says which.
      const checked = decodeMessage(ObservationBatchEnvelope, data);
      return checked.ok ? { ok: false, reason: 'unreadable message' } : checked;
    }
  }
  if (!fastValidEnvelope(raw, sentIds ? batchV2Limits.maxObservations : undefined)) {
    const checked = checkValue(sentIds ? ObservationBatchV2Envelope : ObservationBatchEnvelope, raw);
    if (!checked.ok) return checked;
  }
  const envelope = raw as ObservationBatchEnvelope;
  if (envelope.edge !== edge) {
    return { ok: false, reason: `batch claims edge "${envelope.edge}" but was published on ${subject}` };
  }
  const checkText = mayHoldUnstorableText(json);
  const good: Observation[] = [];
  const rejected: RejectedObservation[] = [];
  envelope.observations.forEach((o, index) => {
    // A computed id needs no second hash to agree with its fields.
    const idComputed = sentIds !== undefined && !sentIds.has(index);
    const problem = observationProblem(o, edge, checkText, window, idComputed);
    if (problem === undefined) good.push(o as Observation);
    else
      rejected.push({
        index,
        observation: o,
        ...problem,
        reason: `observations[${index}]: ${problem.reason}`,
      });
  });
  return { ok: true, batch: { ...envelope, observations: good }, rejected };
}

function observationProblem(
  o: unknown,
  edge: string,
  checkText: boolean,
  window: TimeWindow,
  idComputed = false,
): { kind: RejectKind; reason: string } | undefined {
  if (!fastValidObservation(o, edge, checkText)) {
    const parsed = Observation.safeParse(o);
    if (!parsed.success) {
      const issues = parsed.error.issues;
      // Custom issues come only from the time and text refinements of the schema.
      const kind: RejectKind = issues.some((i) => i.path[0] === 'time' || i.path[0] === 'received')
        ? 'time_invalid'
        : issues.some((i) => i.code === 'custom')
          ? 'text'
          : 'schema';
      const first = issues[0];
      const where = first?.path.length ? `${first.path.join('.')}: ` : '';
      return {
        kind,
        reason: `${where}${first?.message ?? 'invalid'}${issues.length > 1 ? ` (+${issues.length - 1} more)` : ''}`,
      };
    }
    if (parsed.data.edge !== edge) {
      return { kind: 'schema', reason: `carries edge "${parsed.data.edge}", not the batch's "${edge}"` };
    }
  }
  const obs = o as Observation;
  if (obs.time < window.from || obs.time > window.to) {
    const reason =
      timeRangeProblem(Date.parse(obs.time), window.nowMs, window.range) ?? 'time outside the accepted range';
    return { kind: 'time_range', reason: `${reason} (time ${obs.time})` };
  }
  const id = idComputed ? obs.id : observationId(obs);
  if (id !== obs.id) {
    return { kind: 'id_mismatch', reason: `id ${obs.id} is not the id of its fields (${id})` };
  }
  return undefined;
}
