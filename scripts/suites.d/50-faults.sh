# The fault suite (issue #14 item 6; docs/decisions/0042): the compiled bridge and three workers
# processes, two editors making real NetBox edits across 50 roots with real webhooks, and a seeded
# schedule that kill -9s and restarts, once each, the bridge, a workers process, Kafka, UNICOP's
# Redis, NetBox's gunicorn and rqworker, and the stack's real AWX; then the invariant checker.
# Last of the suites: it kills the stack's services (each comes back through its own `up`), so
# nothing else may run beside it. The seed is printed ("[faults] seed N"); UNICOP_FAULT_SEED=N
# repeats the schedule. One counted test: the invariants held and every fault was recovered from.
out="$UNICOP_VAR/test/vitest-faults.json"
rm -f "$out"
# UNICOP_TEST_ALL: vitest.config.ts leaves this file out of the TypeScript suite's run.
UNICOP_TEST_ALL=1 npx vitest run --reporter=default --reporter=json --outputFile.json="$out" \
  test/faults/fault-suite.test.ts
if [ -s "$out" ]; then
  node -e 'const r=require(process.argv[1]); console.log(r.numPassedTests, r.numFailedTests + (r.success===false && r.numFailedTests===0 ? 1 : 0))' "$out" >"$SUITE_RESULT"
  node -e '
    const r = require(process.argv[1]);
    for (const file of r.testResults)
      for (const t of file.assertionResults.filter((t) => t.status === "failed"))
        console.log(`test/faults/fault-suite.test.ts > ${t.fullName}: ${(t.failureMessages[0] || "").split("\n")[0].slice(0, 300)}`);
    ' "$out" >"${SUITE_RESULT%.result}.failures"
fi
