import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CentralSensorConfig } from '@fieldbeam/protocol';
import { z } from 'zod';

/** One central key as applied: its KV revision and value (an empty value for a deleted key). */
const AppliedKey = z
  .object({ revision: z.number().int().nonnegative(), value: CentralSensorConfig })
  .strict();
export type AppliedKey = z.infer<typeof AppliedKey>;

const AppliedFile = z
  .object({
    v: z.literal(1),
    edge: z.string(),
    appliedAt: z.string(),
    all: AppliedKey.nullable(),
    own: AppliedKey.nullable(),
  })
  .strict();
export type AppliedCentralConfig = z.infer<typeof AppliedFile>;

/** `<data_dir>/<edge>.central-sensors.json`, beside the buffer file and named like it. */
export function appliedConfigPath(dataDir: string, edge: string): string {
  return join(dataDir, `${edge}.central-sensors.json`);
}

/**
 * The central config the agent last applied, so that it boots with it while NATS is unreachable.
 * Undefined when there is none; a file that cannot be read or does not validate (a torn disk, an
 * older format) is reported through `problem` and ignored: the agent then starts with its YAML and
 * takes the central config again from NATS.
 */
export function readAppliedConfig(
  path: string,
  edge: string,
  problem: (message: string) => void,
): AppliedCentralConfig | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      problem(`cannot read ${path}: ${(err as Error).message}`);
    return undefined;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    problem(`${path} is not JSON (${(err as Error).message})`);
    return undefined;
  }
  const parsed = AppliedFile.safeParse(doc);
  if (!parsed.success) {
    problem(`${path} is not a central sensor config file: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    return undefined;
  }
  if (parsed.data.edge !== edge) {
    problem(`${path} belongs to edge ${parsed.data.edge}, not ${edge}`);
    return undefined;
  }
  return parsed.data;
}

/**
 * Writes the file whole or not at all: a temporary file beside it is written and flushed, then
 * renamed over it, and the folder flushed, so a power cut leaves the old file or the new one.
 * Mode 0600: it can hold sensor names and places the owner may not want readable by others.
 */
export function writeAppliedConfig(path: string, state: AppliedCentralConfig): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(state)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
