import { readFileSync } from 'node:fs';

const readJson = (path: string) =>
  JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as Record<string, unknown>;

/**
 * What is running, for `fb_cloud_build_info`: the package version; the commit from FB_BUILD_COMMIT,
 * else from a BUILDINFO.json stamp beside the package folder or in it, else 'unknown'; Node's version.
 */
export function buildInfo(env: NodeJS.ProcessEnv = process.env): {
  version: string;
  commit: string;
  node: string;
} {
  let commit = env.FB_BUILD_COMMIT || '';
  for (const stamp of ['../../BUILDINFO.json', '../BUILDINFO.json']) {
    if (commit) break;
    try {
      const c = readJson(stamp).commit;
      if (typeof c === 'string') commit = c;
    } catch {
      // No stamp there: a checkout or an install without one.
    }
  }
  return {
    version: String(readJson('../package.json').version),
    commit: commit || 'unknown',
    node: process.version,
  };
}
