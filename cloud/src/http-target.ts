/**
 * The request target of an HTTP/1.1 request as the router needs it, or why it is not one (a 400).
 *
 * The target is never handed to `new URL()` as a relative reference: `//[` or `//x:99999/` would then
 * be read as a host and port, and the parser throws. An origin-form target (`/path?query`) is taken
 * apart by hand; its path must be RFC 3986 path characters with well-formed percent escapes, so
 * nothing past this point sees a `[` or a stray `%`. The query is decoded leniently, as browsers and
 * GIS clients send characters such as `[` `]` `|` there unescaped. The absolute form
 * (`http://host/path`, RFC 9112 3.2.2) is accepted for its path and query.
 */
export type RequestTarget =
  | { ok: true; path: string; segments: string[]; query: URLSearchParams }
  | { ok: false; error: string };

/** RFC 3986 `path-abempty` of an origin-form target: pchar and "/", escapes as `%XX`. */
const ORIGIN_PATH = /^(?:\/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*)+$/;
const ABSOLUTE = /^https?:\/\//i;
/** Longest target taken; the header size limit bounds it as well, this keeps the message short. */
const MAX_TARGET = 16 * 1024;

const refuse = (why: string): RequestTarget => ({ ok: false, error: `request target ${why}` });

export function parseRequestTarget(raw: string | undefined): RequestTarget {
  if (raw === undefined || raw === '') return refuse('is missing');
  if (raw.length > MAX_TARGET) return refuse(`is longer than ${MAX_TARGET} characters`);
  if (ABSOLUTE.test(raw)) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return refuse('is not a valid absolute URL');
    }
    return parseRequestTarget(`${url.pathname}${url.search}`);
  }
  if (!raw.startsWith('/')) return refuse('must be a path starting with "/"');
  const q = raw.indexOf('?');
  const path = q === -1 ? raw : raw.slice(0, q);
  if (!ORIGIN_PATH.test(path)) {
    return refuse('path may only hold RFC 3986 path characters, with "%" followed by two hex digits');
  }
  // Empty segments (`//x`) are allowed by RFC 3986 and ignored by the routes.
  const segments = path.split('/').filter(Boolean);
  return { ok: true, path, segments, query: new URLSearchParams(q === -1 ? '' : raw.slice(q + 1)) };
}
