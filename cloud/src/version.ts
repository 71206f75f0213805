import { readFileSync } from 'node:fs';

/** The collector's package version (`fieldbeam-cloud --version`). */
export const version: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
