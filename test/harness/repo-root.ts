import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root (the folder with pnpm-workspace.yaml), found upward from this file, so paths are
 * right both from the sources (test/harness) and from the build (test/dist/harness).
 */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'pnpm-workspace.yaml'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root (pnpm-workspace.yaml) not found');
    dir = up;
  }
}

/** The built CLIs, wherever the harness runs from. */
export const builtCli = {
  edge: join(repoRoot(), 'edge/dist/cli.js'),
  cloud: join(repoRoot(), 'cloud/dist/cli.js'),
} as const;
