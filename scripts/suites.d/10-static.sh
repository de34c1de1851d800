# Static checks, one counted check each: TypeScript type-check, Biome (lint + format), ruff for
# Python, ansible-lint for the playbooks, the generated OpenAPI types matching their documents, and the
# files generated from the run state machine matching it.
passed=0 failed=0
check() {
  local name=$1; shift
  echo "[static] $name: $*"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "[static] $name FAILED"; fi
}
check typecheck npx tsc --noEmit
check biome npx biome check .
check ruff scripts/pyenv ruff check .
# Each committed openapi/generated/<name>.ts must be exactly what openapi-typescript makes of the
# committed openapi/<name>.yaml (regenerate with `npm run gen:<name>`).
generated_types_fresh() {
  local name tmp status=0
  tmp=$(mktemp -d)
  for name in awx plugin netbox; do
    if ! npx openapi-typescript "openapi/$name.yaml" -o "$tmp/$name.ts" >"$tmp/$name.log" 2>&1; then
      cat "$tmp/$name.log"; echo "[static] openapi-typescript failed on openapi/$name.yaml"; status=1
    elif ! cmp -s "$tmp/$name.ts" "openapi/generated/$name.ts"; then
      diff -u "openapi/generated/$name.ts" "$tmp/$name.ts" | head -20
      echo "[static] openapi/generated/$name.ts differs from openapi/$name.yaml: run npm run gen:$name"; status=1
    fi
  done
  rm -rf "$tmp"
  return $status
}
check openapi-generated generated_types_fresh
# netbox-plugin/unicop/run_states.json and the run-state diagram in docs/architecture.md must be
# exactly what core/runs/state-machine.ts makes (regenerate with `npm run gen:run-states`).
check run-states-generated npx tsx scripts/export-run-states.ts --check
# The Prometheus alert rules: `promtool check rules` and their unit tests (`promtool test rules`),
# with promtool built once into the cache (scripts/promtool; decision 0041; `npm test` starts the
# build in the background before the stack comes up).
promtool_rules() {
  (cd deploy/prometheus && ../../scripts/promtool check rules alerts.yaml && ../../scripts/promtool test rules alerts.test.yaml)
}
check prometheus-rules promtool_rules
if compgen -G 'awx-playbooks/*.yml' >/dev/null; then
  check ansible-lint scripts/pyenv ansible-lint awx-playbooks
fi
echo "$passed $failed" >"$SUITE_RESULT"
