import { readFileSync } from 'node:fs';

/** The agent's package version, reported in status heartbeats. */
export const version: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
