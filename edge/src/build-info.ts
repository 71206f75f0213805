import { readFileSync } from 'node:fs';
import { version } from './version.js';

/** What is running, for `fb_edge_build_info`. */
export interface BuildInfo {
  version: string;
  /** FB_BUILD_COMMIT, else the `commit` of the BUILDINFO.json a release bundle carries, else 'unknown'. */
  commit: string;
  node: string;
}

export function buildInfo(env: NodeJS.ProcessEnv = process.env): BuildInfo {
  return { version, commit: env.FB_BUILD_COMMIT || stampedCommit() || 'unknown', node: process.version };
}

/** The Pi bundle has BUILDINFO.json beside the package folder (`<bundle>/app/dist/` runs). */
function stampedCommit(): string | undefined {
  for (const stamp of ['../../BUILDINFO.json', '../BUILDINFO.json']) {
    try {
      const { commit } = JSON.parse(readFileSync(new URL(stamp, import.meta.url), 'utf8')) as {
        commit?: unknown;
      };
      if (typeof commit === 'string' && commit) return commit;
    } catch {
      // No stamp there: a checkout or an install without one.
    }
  }
  return undefined;
}
