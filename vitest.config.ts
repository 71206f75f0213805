import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['protocol/src/**/*.test.ts', 'edge/src/**/*.test.ts', 'cloud/src/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          // The fault suite runs as \`pnpm faults\` / \`pnpm soak\` (whole processes, network namespaces,
          // minutes long); it is not yet part of this run.
          exclude: ['test/faults/**', '**/node_modules/**'],
          // Each file starts its own servers on free ports; keep the 2-core box from thrashing.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
