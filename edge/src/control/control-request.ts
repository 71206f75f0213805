import {
  ControlErrorStatus,
  type ControlOp,
  ControlRequest,
  controlLimits,
  describeIssues,
} from '@fieldbeam/protocol';

/** A request the edge will not act on: the status it answers with and why. */
export class ControlRefusal extends Error {
  override name = 'ControlRefusal';
  constructor(
    readonly status: number,
    message: string,
    /** The request's id when it could be read, so that even the refusal carries the correlation. */
    readonly id?: string,
  ) {
    super(message);
  }
}

/**
 * Reads a control request's body: empty (no options) or a JSON object the op's schema accepts, at most
 * `controlLimits.maxRequestBytes`. The size is checked before anything is decoded, so a large body
 * costs nothing beyond its receipt. Throws `ControlRefusal` (413, 400) naming the problem.
 */
export function parseControlRequest<Op extends ControlOp>(op: Op, data: Uint8Array): ControlRequest<Op> {
  if (data.length > controlLimits.maxRequestBytes)
    throw new ControlRefusal(
      ControlErrorStatus.TOO_LARGE,
      `request body is ${data.length} bytes; a ${op} request takes at most ${controlLimits.maxRequestBytes}`,
    );
  if (data.length === 0) return {} as ControlRequest<Op>;
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (err) {
    throw new ControlRefusal(
      ControlErrorStatus.BAD_REQUEST,
      `request body is not JSON (${(err as Error).message}); send {} or nothing`,
    );
  }
  const parsed = ControlRequest[op].safeParse(json);
  if (!parsed.success) {
    const id = (json as { id?: unknown } | null)?.id;
    throw new ControlRefusal(
      ControlErrorStatus.BAD_REQUEST,
      `not a ${op} request: ${describeIssues(parsed.error.issues)}`,
      typeof id === 'string' && id.length > 0 && id.length <= 128 ? id : undefined,
    );
  }
  return parsed.data as ControlRequest<Op>;
}
