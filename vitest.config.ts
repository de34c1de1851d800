import { configDefaults, defineConfig } from 'vitest/config';

// Integration tests talk to the real local stack (scripts/stack up), so files run one at a time:
// the machine has two cores and the services are shared.
const pendingSuites = ['test/faults/fault-suite.test.ts', 'test/trace/one-trace.test.ts'];

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Left out of this run (`UNICOP_TEST_ALL=1 npx vitest run <file>` runs one): the fault suite, which
    // kills the stack's services, so it runs alone (scripts/test-faults); and the end-to-end trace
    // read back from Jaeger (issue #16 item 3) until it has passed on a loaded CI machine.
    exclude: [...configDefaults.exclude, ...(process.env.UNICOP_TEST_ALL ? [] : pendingSuites)],
    fileParallelism: false,
    // Caps, not budgets: tests wait for events (a job's end, a message) and return when they come;
    // a loaded 2-core machine ran real ansible/AWX/Kafka work past a 60 s default.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    reporters: ['default'],
  },
});
