import type { z } from 'zod';

/** Outcome of checking a message against its schema; `reason` is one line a person can act on. */
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Parse JSON bytes and validate them, never throwing: consumers must not stop on bad input. */
export function decodeMessage<S extends z.ZodType>(
  schema: S,
  bytes: Uint8Array | string,
): Checked<z.infer<S>> {
  let text: string;
  try {
    text = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, reason: 'not valid UTF-8' };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not valid JSON: ${(err as Error).message}` };
  }
  return checkValue(schema, raw);
}

/** Validates an already parsed value, never throwing. */
export function checkValue<S extends z.ZodType>(schema: S, raw: unknown): Checked<z.infer<S>> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, reason: `schema: ${describeIssues(parsed.error.issues)}` };
}

/** Up to five issues as `path: message`, joined, with a count of the rest. */
export function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  const shown = issues.slice(0, 5).map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
  const more = issues.length > 5 ? ` (+${issues.length - 5} more)` : '';
  return `${shown.join('; ')}${more}`;
}
