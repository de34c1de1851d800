import { defineConfig } from 'vitest/config';

// Integration tests talk to the real local stack (scripts/stack up), so files run one at a time:
// the machine has two cores and the services are shared.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
