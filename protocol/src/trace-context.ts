/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/), the part Fieldbeam carries: the trace-id.
 *
 * An observation stores the 32-hex trace-id of the message that brought it, not the whole
 * `traceparent`: the parent-id names one hop's span and changes at every hop (the edge's receive,
 * its forward, the collector's ingest are each a span of their own), and the flags are a per-hop
 * sampling decision. What stays the same from the sensor to the dataset, and what an operator looks
 * a reading up by, is the trace-id. It is also fixed-width (16 bytes: Postgres stores it as a uuid)
 * and shared by every reading of a message, so a v2 batch's dictionary holds it once per message.
 */

const TRACE_ID = /^[0-9a-f]{32}$/;
const INVALID_TRACE_ID = '0'.repeat(32);

/** True for a trace-id as W3C writes it: 32 lower-case hex digits, not all zero. */
export function isTraceId(s: unknown): s is string {
  return typeof s === 'string' && s.length === 32 && TRACE_ID.test(s) && s !== INVALID_TRACE_ID;
}

// version "-" trace-id "-" parent-id "-" flags; a future version may append "-" and more fields.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The trace-id of a `traceparent` header, or undefined when the header is absent or not valid (then
 * the receiver starts a new trace, as the spec says). Version `ff` is invalid; version 00 has exactly
 * four fields; a later version may carry more after the flags. An all-zero trace-id or parent-id is
 * invalid.
 */
export function traceIdOfTraceparent(header: string | undefined): string | undefined {
  if (header === undefined || header.length > 512) return undefined;
  const m = TRACEPARENT.exec(header.trim());
  if (!m) return undefined;
  const [, version, traceId, parentId, , rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (parentId === '0'.repeat(16) || !isTraceId(traceId)) return undefined;
  return traceId;
}

/** A `traceparent` header value for a trace-id and a span of it (sampled). */
export function traceparent(traceId: string, spanId: string): string {
  return `00-${traceId}-${spanId}-01`;
}
