import { defineConfig } from 'vitest/config';

// Integration tests talk to the real local stack (scripts/stack up), so files run one at a time:
// the machine has two cores and the services are shared.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    // Caps, not budgets: tests wait for events (a job's end, a message) and return when they come;
    // a loaded 2-core machine ran real ansible/AWX/Kafka work past a 60 s default.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    reporters: ['default'],
  },
});
