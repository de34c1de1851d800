# TypeScript tests (vitest) against the real local stack.
out="$UNICOP_VAR/test/vitest.json"
rm -f "$out"
npx vitest run --reporter=default --reporter=json --outputFile.json="$out"
if [ -s "$out" ]; then
  node -e 'const r=require(process.argv[1]); console.log(r.numPassedTests, r.numFailedTests + (r.numTotalTestSuites && r.success===false && r.numFailedTests===0 ? 1 : 0))' "$out" >"$SUITE_RESULT"
fi
