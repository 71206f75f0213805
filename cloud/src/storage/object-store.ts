import type { Readable } from 'node:stream';

/** What a listing says about one object. */
export interface ObjectInfo {
  key: string;
  size: number;
}

/**
 * Where built datasets and exports live. Keys are `/`-separated relative paths (no `..`, no leading
 * `/`). Writes are whole-object and atomic: a reader sees the old object, the new one, or none, never
 * a part. Putting a key again replaces it.
 */
export interface ObjectStore {
  /** Human-readable location for logs (`folder /var/...`, `s3 bucket/prefix`). */
  readonly describe: string;
  put(key: string, body: Uint8Array, contentType?: string): Promise<void>;
  /** Like `put`, the body read from a local file as it is sent (large objects: none held in memory). */
  putFile?(key: string, path: string, contentType?: string): Promise<void>;
  /** The whole object, or undefined when there is none. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** The object as a stream (for downloads), or undefined when there is none. */
  getStream(key: string): Promise<{ body: Readable; size: number } | undefined>;
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<ObjectInfo[]>;
  /** Removes the object; removing a missing one is not an error. */
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

const SEGMENT = /^[A-Za-z0-9_.:=+-][A-Za-z0-9_.:=+ -]*$/;

/** Throws unless `key` is a safe relative key (used by every adapter, so none can escape its root). */
export function checkKey(key: string): string {
  const parts = key.split('/');
  if (
    key.length === 0 ||
    key.length > 1024 ||
    parts.some((p) => !SEGMENT.test(p) || p === '.' || p === '..')
  ) {
    throw new Error(`invalid object key "${key}"`);
  }
  return key;
}
