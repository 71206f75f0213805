import type { DatasetDef } from './dataset-config.js';
import { parseWindowKey, windowStartOf } from './windows.js';

/**
 * The window an operator asks to rebuild, from a dataset name and a time inside the window (its start,
 * or any ISO-8601 UTC time in it); or why there is none. Shared by `fieldbeam-cloud rebuild` and the
 * admin HTTP route.
 */
export function windowToRebuild(
  datasets: readonly DatasetDef[],
  name: string,
  window: string,
): { def: DatasetDef; start: number } | { error: string } {
  const def = datasets.find((d) => d.name === name);
  if (!def) {
    const known = datasets.map((d) => d.name).join(', ') || 'none configured';
    return { error: `no dataset "${name}" (datasets: ${known})` };
  }
  const at = parseWindowKey(window);
  if (at === undefined)
    return { error: `"${window}" is not an ISO-8601 UTC time such as 2026-11-30T12:00:00Z` };
  return { def, start: windowStartOf(at, def.window) };
}
