# Static checks, one counted check each: TypeScript type-check, Biome (lint + format), ruff for
# Python, ansible-lint for the playbooks.
passed=0 failed=0
check() {
  local name=$1; shift
  echo "[static] $name: $*"
  if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "[static] $name FAILED"; fi
}
check typecheck npx tsc --noEmit
check biome npx biome check .
check ruff scripts/pyenv ruff check .
if compgen -G 'awx-playbooks/*.yml' >/dev/null; then
  check ansible-lint scripts/pyenv ansible-lint awx-playbooks
fi
echo "$passed $failed" >"$SUITE_RESULT"
