import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'protocol/src/**/*.test.ts',
            'edge/src/**/*.test.ts',
            'cloud/src/**/*.test.ts',
            'cloud/console/src/**/*.test.ts',
          ],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          // test/faults runs every fault scenario in its quick form and a one-minute soak (about 7 min;
          // needs root for its network namespace); `pnpm faults` / `pnpm soak` run the long forms.
          // Each file starts its own servers on free ports; keep the 2-core box from thrashing.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
