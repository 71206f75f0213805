import { join } from 'node:path';
import { configForDisplay, loadEdgeConfig } from '../config.js';
import { readRejects } from '../outbox/reject-table.js';
import { formatStatus } from '../status.js';
import { assertReadable, readingAgentFiles } from './file-access.js';

/** `fieldbeam-edge check`: the config with defaults applied, secrets redacted. */
export function checkConfig(configFile: string, out: NodeJS.WritableStream): number {
  // Keys in an old spelling are named on stderr, so the config on stdout stays parseable.
  const onWarning = (message: string) => process.stderr.write(`warning: ${message}\n`);
  const cfg = readingAgentFiles(['check', '--config', configFile], () =>
    loadEdgeConfig(configFile, process.env, { onWarning }),
  );
  out.write(`${configForDisplay(cfg)}\n`);
  return 0;
}

/** `fieldbeam-edge status`: asks the running agent (its /healthz) and prints its state for a person. */
export async function showStatus(
  configFile: string,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const cfg = readingAgentFiles(['status', '--config', configFile], () => loadEdgeConfig(configFile));
  const url = `http://${cfg.http.host === '0.0.0.0' ? '127.0.0.1' : cfg.http.host}:${cfg.http.port}/healthz`;
  let s: Parameters<typeof formatStatus>[0];
  try {
    s = (await (await fetch(url, { signal: AbortSignal.timeout(3000) })).json()) as typeof s;
  } catch (e) {
    err.write(`no agent answers at ${url}: ${(e as Error).message}\n`);
    return 1;
  }
  out.write(formatStatus(s));
  return 0;
}

/** `fieldbeam-edge rejects`: the latest rejected inputs kept in the buffer file, one JSON line each. */
export function showRejects(configFile: string, limit: number, out: NodeJS.WritableStream): number {
  const args = ['rejects', '--config', configFile, '--limit', String(limit)];
  const cfg = readingAgentFiles(args, () => loadEdgeConfig(configFile));
  const buffer = join(cfg.data_dir, `${cfg.edge}.buffer.sqlite`);
  // SQLite reports an unreadable file as "unable to open database file"; say why instead.
  assertReadable(buffer, args);
  // Read-only: the agent may be running on the same file.
  for (const r of readRejects(buffer, limit)) {
    const { payload, ...rest } = r;
    out.write(
      `${JSON.stringify({
        ...rest,
        at: new Date(r.at_ms).toISOString(),
        // Only the first buffer.reject_payload_bytes of a payload are kept.
        truncated: r.payload_bytes > payload.length,
        payload: payload.toString('utf8'),
      })}\n`,
    );
  }
  return 0;
}
