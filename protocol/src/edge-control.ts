import { z } from 'zod';
import { EdgeStatus, SensorState } from './messages.js';
import { IsoTime } from './observation.js';
import { isSubjectToken } from './subjects.js';

/**
 * Control of one edge over NATS request/reply: the edge runs a NATS service (the services API,
 * `$SRV` discovery) named `fieldbeam-edge-<id>` whose endpoints are `fb.ctl.<id>.<op>`.
 * A request body is empty or a small JSON object; its optional `id` comes back in the reply (success
 * or error), beside the reply subject the services API answers on.
 */
export const controlOps = ['status', 'sensors', 'rejects', 'reload', 'ping'] as const;
export type ControlOp = (typeof controlOps)[number];

export const controlLimits = {
  /** A request body larger than this is answered with an error (413) before it is parsed. */
  maxRequestBytes: 4096,
  /** Rejects a `rejects` request returns when it names no `limit`, and the most it may ask for. */
  defaultRejects: 20,
  maxRejects: 200,
  /** Sensors a `sensors` reply lists (`count` is the full number). */
  maxSensors: 1000,
} as const;

/** The correlation a caller may put in any request; echoed as `id` in the reply. */
const RequestId = z.string().min(1).max(128);

/** Request bodies per op. Unknown fields are refused, so that a mistyped option is not ignored. */
export const ControlRequest = {
  status: z.object({ id: RequestId.optional() }).strict(),
  sensors: z.object({ id: RequestId.optional() }).strict(),
  rejects: z
    .object({
      id: RequestId.optional(),
      limit: z.number().int().min(1).max(controlLimits.maxRejects).optional(),
    })
    .strict(),
  reload: z.object({ id: RequestId.optional() }).strict(),
  ping: z.object({ id: RequestId.optional() }).strict(),
} as const satisfies Record<ControlOp, z.ZodType>;
export type ControlRequest<Op extends ControlOp> = z.infer<(typeof ControlRequest)[Op]>;

const replyFields = { edge: z.string().min(1), id: RequestId.optional() };

/** One kept reject: an input the edge could not use, and why. */
export const ControlReject = z.object({
  at: IsoTime,
  source: z.string(),
  topic: z.string(),
  reason: z.string(),
  /** The payload's first bytes as UTF-8 (only `buffer.reject_payload_bytes` are kept). */
  payload: z.string(),
  payloadBytes: z.number().int().nonnegative(),
  truncated: z.boolean(),
});
export type ControlReject = z.infer<typeof ControlReject>;

/** What a reload changed, by sensor topic. */
export const SensorChanges = z.object({
  added: z.array(z.string()),
  removed: z.array(z.string()),
  /** Same topic, other decoder, station or options. */
  changed: z.array(z.string()),
});
export type SensorChanges = z.infer<typeof SensorChanges>;

/** Replies per op (the error reply of any op carries the services API's error headers instead). */
export const ControlReply = {
  /** The heartbeat as the edge would send it now, plus what `/healthz` adds (policy, MQTT, auto_register). */
  status: EdgeStatus.extend({
    id: RequestId.optional(),
    buffer: EdgeStatus.shape.buffer.extend({ policy: z.enum(['block', 'drop_oldest']).optional() }).loose(),
    mqtt: z.record(z.string(), z.unknown()).optional(),
    autoRegister: z.record(z.string(), z.unknown()).optional(),
  }).loose(),
  /** Configured (local and central) and auto-registered sensors, newest reading when known. */
  sensors: z.object({
    ...replyFields,
    count: z.number().int().nonnegative(),
    sensors: z.array(SensorState).max(controlLimits.maxSensors),
  }),
  /** The newest kept rejects first. */
  rejects: z.object({ ...replyFields, rejects: z.array(ControlReject).max(controlLimits.maxRejects) }),
  /** The config file was read again and its sensors applied (a refused file is an error reply). */
  reload: z.object({
    ...replyFields,
    changes: SensorChanges,
    sensors: z.number().int().nonnegative(),
    autoRegistered: z.object({
      kept: z.number().int().nonnegative(),
      dropped: z.number().int().nonnegative(),
    }),
  }),
  ping: z.object({ ...replyFields, version: z.string(), uptimeS: z.number().nonnegative(), time: IsoTime }),
} as const satisfies Record<ControlOp, z.ZodType>;
export type ControlReply<Op extends ControlOp> = z.infer<(typeof ControlReply)[Op]>;

/**
 * The `Nats-Service-Error-Code` values an edge answers with, HTTP-like: 4xx means the request (or,
 * for reload, the edge's config file) is at fault and the same request fails again; 5xx means the
 * edge failed and a later try may pass.
 */
export const ControlErrorStatus = {
  /** The body is not JSON or not what the op takes. */
  BAD_REQUEST: 400,
  /** The body is larger than `controlLimits.maxRequestBytes`. */
  TOO_LARGE: 413,
  /** reload: the config file is invalid; the edge keeps running with its last good sensors. */
  CONFIG_INVALID: 422,
  /** The edge failed to answer (its buffer closing, an unexpected error). */
  INTERNAL: 500,
} as const;

/** The body of an error reply (the same message is in the `Nats-Service-Error` header). */
export const ControlErrorBody = z.object({
  ...replyFields,
  error: z.object({ status: z.number().int(), message: z.string() }),
});
export type ControlErrorBody = z.infer<typeof ControlErrorBody>;

/** The NATS service name of an edge's control service. */
export function controlServiceName(edge: string): string {
  if (!isSubjectToken(edge)) throw new Error(`edge id "${edge}" is not a valid subject token`);
  return `fieldbeam-edge-${edge}`;
}
