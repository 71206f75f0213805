import { randomUUID } from 'node:crypto';
import {
  ControlErrorBody,
  type ControlOp,
  ControlReply,
  type ControlRequest,
  controlLimits,
  describeIssues,
  subjects,
} from '@fieldbeam/protocol';
import { ServiceErrorCodeHeader, ServiceErrorHeader } from '@nats-io/services';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { CloudError, CloudErrorCode } from '../errors.js';

/** The part of a NATS connection the client needs. */
export type ControlConnection = Pick<NatsConnection, 'request'>;

export interface RequestEdgeOptions {
  /** How long to wait for the edge's answer; no responder at all fails at once, whatever this is. */
  timeoutMs?: number;
}

/** Wait for an edge's answer when the caller names none: a Pi on a slow link answers well inside it. */
export const DEFAULT_CONTROL_TIMEOUT_MS = 5000;

/** A control request that failed: the edge, the op, and the edge's own error status when it answered one. */
export class EdgeControlError extends CloudError {
  override name = 'EdgeControlError';
  constructor(
    code: CloudErrorCode,
    message: string,
    retryable: boolean,
    readonly edge: string,
    readonly op: ControlOp,
    /** The `Nats-Service-Error-Code` of an error reply (400, 413, 422, 500...), when the edge answered. */
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, retryable, options);
  }
}

/**
 * Asks edge `edgeId` over NATS (`fb.ctl.<id>.<op>`, its control service) and returns its typed reply.
 * The request carries an `id` (the caller's, or a new one) that the reply must echo, beside the reply
 * subject NATS correlates on. Failures are `EdgeControlError`s whose code says whether a retry helps:
 * EDGE_NOT_CONNECTED (no responder: the edge is not connected; answered at once), EDGE_TIMEOUT,
 * EDGE_REFUSED (an error reply 4xx: the request or the edge's config is wrong), EDGE_FAILED (5xx),
 * EDGE_REPLY_INVALID, NATS_UNREACHABLE (the collector's own connection is down).
 */
export async function requestEdge<Op extends ControlOp>(
  nc: ControlConnection,
  edgeId: string,
  op: Op,
  body?: ControlRequest<Op>,
  opts: RequestEdgeOptions = {},
): Promise<ControlReply<Op>> {
  const subject = subjects.control(edgeId, op);
  const id = body?.id ?? randomUUID();
  const payload = new TextEncoder().encode(JSON.stringify({ ...body, id }));
  if (payload.length > controlLimits.maxRequestBytes)
    throw fail(
      CloudErrorCode.EDGE_REFUSED,
      `the ${op} request is ${payload.length} bytes, over the ${controlLimits.maxRequestBytes} an edge takes`,
      false,
    );
  let msg: Msg;
  try {
    msg = await nc.request(subject, payload, { timeout: opts.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS });
  } catch (err) {
    throw requestFailure(err);
  }
  return readReply(msg);

  function fail(code: CloudErrorCode, message: string, retryable: boolean, status?: number, cause?: unknown) {
    return new EdgeControlError(code, `edge ${edgeId}, ${op}: ${message}`, retryable, edgeId, op, status, {
      cause,
    });
  }

  function requestFailure(err: unknown): EdgeControlError {
    const e = err as Error & { isNoResponders?: () => boolean };
    if (typeof e?.isNoResponders === 'function' && e.isNoResponders())
      return fail(
        CloudErrorCode.EDGE_NOT_CONNECTED,
        `no answer on ${subject}: the edge is not connected to NATS (or runs a version without the control service)`,
        true,
        undefined,
        err,
      );
    if (e?.name === 'TimeoutError')
      return fail(
        CloudErrorCode.EDGE_TIMEOUT,
        `no answer within ${opts.timeoutMs ?? DEFAULT_CONTROL_TIMEOUT_MS} ms (the edge is connected but busy or on a slow link); try again`,
        true,
        undefined,
        err,
      );
    return fail(
      CloudErrorCode.NATS_UNREACHABLE,
      `the request could not be sent: ${e?.message}`,
      true,
      undefined,
      err,
    );
  }

  function readReply(m: Msg): ControlReply<Op> {
    const errorText = m.headers?.get(ServiceErrorHeader);
    if (errorText) {
      const status = Number(m.headers?.get(ServiceErrorCodeHeader)) || 500;
      const refused = status >= 400 && status < 500;
      return throwing(
        fail(
          refused ? CloudErrorCode.EDGE_REFUSED : CloudErrorCode.EDGE_FAILED,
          `${errorText} (error ${status})`,
          !refused,
          status,
        ),
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder().decode(m.data));
    } catch (err) {
      return throwing(
        fail(CloudErrorCode.EDGE_REPLY_INVALID, 'the reply is not JSON', false, undefined, err),
      );
    }
    const errorBody = ControlErrorBody.safeParse(json);
    if (errorBody.success) {
      // An error reply that lost its headers on the way still says what went wrong.
      const { status, message } = errorBody.data.error;
      const refused = status >= 400 && status < 500;
      return throwing(
        fail(
          refused ? CloudErrorCode.EDGE_REFUSED : CloudErrorCode.EDGE_FAILED,
          `${message} (error ${status})`,
          !refused,
          status,
        ),
      );
    }
    const parsed = ControlReply[op].safeParse(json);
    if (!parsed.success)
      return throwing(
        fail(
          CloudErrorCode.EDGE_REPLY_INVALID,
          `the reply is not a ${op} reply: ${describeIssues(parsed.error.issues)}`,
          false,
        ),
      );
    const reply = parsed.data as ControlReply<Op>;
    if (reply.edge !== edgeId || (reply.id !== undefined && reply.id !== id))
      return throwing(
        fail(
          CloudErrorCode.EDGE_REPLY_INVALID,
          `the reply is for ${reply.edge} request ${reply.id}, not this request (${id})`,
          false,
        ),
      );
    return reply;
  }
}

function throwing(err: Error): never {
  throw err;
}
