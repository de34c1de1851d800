# TypeScript tests (vitest) against the real local stack.
out="$UNICOP_VAR/test/vitest.json"
rm -f "$out"
npx vitest run --reporter=default --reporter=json --outputFile.json="$out"
if [ -s "$out" ]; then
  node -e 'const r=require(process.argv[1]); console.log(r.numPassedTests, r.numFailedTests + (r.numTotalTestSuites && r.success===false && r.numFailedTests===0 ? 1 : 0))' "$out" >"$SUITE_RESULT"
  # The failed tests by name, with the first line of each failure, for the summary at the end
  # (CI keeps only the tail of the output).
  node -e '
    const r = require(process.argv[1]);
    for (const file of r.testResults) {
      const rel = file.name.replace(process.cwd() + "/", "");
      if (file.status === "failed" && file.assertionResults.every((t) => t.status !== "failed"))
        console.log(`${rel}: ${(file.message || "the file failed to load").split("\n")[0]}`);
      for (const t of file.assertionResults.filter((t) => t.status === "failed"))
        console.log(`${rel} > ${t.fullName}: ${(t.failureMessages[0] || "").split("\n")[0].slice(0, 300)}`);
    }' "$out" >"${SUITE_RESULT%.result}.failures"
fi
