# The NetBox plugin as a user installs it: built as a wheel with `python -m build`, installed
# NON-editable into a clean venv inside NetBox's root (var/netbox/rootfs, python3.13), and every plugin
# page rendered from that install (unicop/tests/test_pages.py under NetBox's test runner, i.e. Django's
# test client against a test database cloned from the stack's PostgreSQL like scripts/test-plugin's).
#
# Counted checks ("<passed> <failed>" to $SUITE_RESULT):
#   - the wheel holds every package-data file of the source tree (templates, static, run_states.json,
#     the tests' JSON) and every migration;
#   - `unicop` is imported from the clean venv's site-packages, installed from that wheel, not editable;
#   - one per page rendered by test_pages.py (each answers 200 and shows its template's content, the
#     template loaded from the installed package).
#
# Kept under var/netbox/rootfs/opt/unicop-wheel/ (inside the root, so removed with it):
#   build-venv/   python -m build and setuptools, pinned below (made once)
#   venv/         the clean venv: NetBox's exact pins (pip freeze of the stack's NetBox venv, less the
#                 editable plugin), remade when those change; the plugin wheel on top, reinstalled
#                 only when the wheel's sha256 changes (the build is reproducible: SOURCE_DATE_EPOCH)
#   src/, dist/   the copied source (tracked and untracked-but-not-ignored files) and the wheel
# A re-run with nothing changed costs the build (a few seconds) and the test runner's start-up.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK_SERVICE=plugin-wheel
source "$repo/scripts/stack.d/common.sh"
set +e

BUILD_TOOLS=(build==1.6.1 setuptools==84.2.1 packaging==26.3 pyproject-hooks==1.3.3)
TEST_DB="${UNICOP_PLUGIN_WHEEL_TEST_DB:-test_unicop_wheel}"
PAGE_TESTS=unicop.tests.test_pages

passed=0 failed=0 reported=0
report() { [ $reported = 1 ] || { echo "$passed $failed" >"$SUITE_RESULT"; reported=1; }; }
# A step that cannot go on: counted as one failure, and the suite ends.
abort() { echo "[plugin-wheel] FAILED: $*" >&2; failed=$((failed + 1)); report; exit 1; }
check() { # check NAME OK(0|1) [WHY]
  if [ "$2" = 0 ]; then passed=$((passed + 1)); echo "[plugin-wheel] ok: $1"
  else failed=$((failed + 1)); echo "[plugin-wheel] FAILED: $1${3:+ — $3}"; fi
}
trap report EXIT
: "${SUITE_RESULT:=$UNICOP_VAR/test/35-plugin-wheel.result}"
mkdir -p "$(dirname "$SUITE_RESULT")"

nb="$repo/scripts/stack.d/netbox.sh"
for s in redis postgres netbox; do "$repo/scripts/stack.d/$s.sh" up >/dev/null || abort "$s did not come up"; done
rootfs="$UNICOP_VAR/netbox/rootfs"
W=/opt/unicop-wheel            # inside the root
host_w="$rootfs$W"
mkdir -p "$host_w"
exec 8>"$host_w/.lock"
flock -w 900 8 || abort "another run holds $host_w/.lock"
log="$UNICOP_LOG_DIR/plugin-wheel.log"
: >"$log"
in_root() { "$nb" exec "$@"; }  # NetBox's environment in the root; PATH=... as the first word overrides it

# 1. The build tools (once).
if [ "$(cat "$host_w/build-venv.ok" 2>/dev/null)" != "${BUILD_TOOLS[*]}" ]; then
  rm -rf "$host_w/build-venv" "$host_w/build-venv.ok"
  in_root python3.13 -m venv "$W/build-venv" >>"$log" 2>&1 &&
    in_root "$W/build-venv/bin/pip" install "${BUILD_TOOLS[@]}" >>"$log" 2>&1 ||
    abort "could not make the build venv (see $log)"
  echo "${BUILD_TOOLS[*]}" >"$host_w/build-venv.ok"
fi

# 2. The wheel, built from a copy of the plugin's source as a checkout has it.
rm -rf "$host_w/src" "$host_w/dist"
mkdir -p "$host_w/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard -- netbox-plugin |
  while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) |
  tar -xf - -C "$host_w/src" --strip-components=1 || abort "could not copy the plugin's source"
in_root SOURCE_DATE_EPOCH=315532800 "$W/build-venv/bin/python" -m build --wheel --no-isolation \
  --outdir "$W/dist" "$W/src" >>"$log" 2>&1 || abort "python -m build failed (see $log)"
wheel=$(cd "$host_w/dist" && ls netbox_unicop-*.whl 2>/dev/null | head -n 1)
[ -n "$wheel" ] || abort "python -m build made no wheel (see $log)"
wheel_sha=$(sha256sum "$host_w/dist/$wheel" | cut -c1-64)
echo "[plugin-wheel] built $wheel (sha256 ${wheel_sha:0:16})"

# Check: every non-Python file of the package and every migration is in the wheel.
missing=$(cd "$host_w/src" && find unicop -type f \( -path '*/migrations/*.py' -o ! -name '*.py' \) \
  ! -path '*/__pycache__/*' ! -name '*.pyc' | sort |
  python3 -c '
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
print(" ".join(p for p in sys.stdin.read().split() if p not in names))' "$host_w/dist/$wheel")
check "the wheel ships templates, static files, JSON data and migrations" "$([ -z "$missing" ] && echo 0 || echo 1)" \
  "missing: $missing"

# 3. The clean venv: NetBox's exact pins, then the wheel (non-editable) when its hash changed.
in_root pip freeze --exclude-editable 2>>"$log" | grep -viE '^(netbox-unicop|-e |#)' >"$host_w/requirements.new" ||
  abort "could not read the stack's NetBox pins (see $log)"
grep -qi '^netbox==' "$host_w/requirements.new" || abort "no netbox pin in the stack's NetBox venv"
if ! cmp -s "$host_w/requirements.new" "$host_w/venv.requirements" || [ ! -x "$host_w/venv/bin/netbox" ]; then
  say "making the clean venv ($W/venv: NetBox's pins from PyPI; log $log)"
  rm -rf "$host_w/venv" "$host_w/venv.requirements" "$host_w/venv.wheel"
  in_root python3.13 -m venv "$W/venv" >>"$log" 2>&1 &&
    in_root "$W/venv/bin/pip" install --no-deps -r "$W/requirements.new" >>"$log" 2>&1 ||
    abort "could not make the clean venv (see $log)"
  mv "$host_w/requirements.new" "$host_w/venv.requirements"
fi
rm -f "$host_w/requirements.new"
if [ "$(cat "$host_w/venv.wheel" 2>/dev/null)" != "$wheel_sha" ]; then
  rm -f "$host_w/venv.wheel"
  in_root "$W/venv/bin/pip" install --no-deps --force-reinstall "$W/dist/$wheel" >>"$log" 2>&1 ||
    abort "pip install $wheel failed (see $log)"
  echo "$wheel_sha" >"$host_w/venv.wheel"
fi

# Check: the plugin comes from that venv's site-packages, installed from a wheel, not editable.
where=$(in_root "$W/venv/bin/python" -c '
import importlib.util, json
from importlib.metadata import distribution
d = distribution("netbox-unicop")
direct = json.loads(d.read_text("direct_url.json") or "{}")
print(importlib.util.find_spec("unicop").origin)
print(direct.get("dir_info", {}).get("editable", False), direct.get("url", ""))' 2>>"$log")
origin=$(sed -n 1p <<<"$where")
case "$origin" in
  "$W"/venv/lib/python3.13/site-packages/unicop/__init__.py)
    check "unicop imported from the wheel install ($origin)" "$(grep -q "^False file://$W/dist/$wheel\$" <<<"$where" && echo 0 || echo 1)" \
      "installed as: $(sed -n 2p <<<"$where")" ;;
  *) check "unicop imported from the wheel install" 1 "imported from '${origin:-nowhere}'" ;;
esac

# 4. Every page, from that install (test database cloned like scripts/test-plugin's).
pg() {
  PGPASSWORD=$(env_get UNICOP_PG_PASSWORD) psql -X -q -At -v ON_ERROR_STOP=1 -h "$UNICOP_HOST" \
    -p "$UNICOP_PG_PORT" -U "$(env_get UNICOP_PG_USER)" -d postgres "$@"
}
if [ "$(pg -c "SELECT 1 FROM pg_database WHERE datname = '$TEST_DB'")" != 1 ]; then
  pg -c "CREATE DATABASE $TEST_DB TEMPLATE netbox_test_template" 2>>"$log" ||
    say "no netbox_test_template: the runner migrates $TEST_DB from scratch (~6 min)"
fi
mkdir -p "$UNICOP_VAR/test"
out="$UNICOP_VAR/test/plugin-wheel-pages.log"
in_root PATH="$W/venv/bin:/usr/bin:/bin" \
  PYTHONPATH=/unicop/netbox-plugin/testing NETBOX_CONFIGURATION=configuration_unicop \
  UNICOP_PG_HOST="$UNICOP_HOST" UNICOP_PG_PORT="$UNICOP_PG_PORT" \
  UNICOP_PG_DATABASE="$(env_get UNICOP_PG_DATABASE)" UNICOP_PG_USER="$(env_get UNICOP_PG_USER)" \
  UNICOP_PG_PASSWORD="$(env_get UNICOP_PG_PASSWORD)" UNICOP_PLUGIN_TEST_DB="$TEST_DB" \
  UNICOP_REDIS_HOST="$UNICOP_HOST" UNICOP_REDIS_PORT="$UNICOP_REDIS_PORT" \
  "$W/venv/bin/netbox" test --keepdb --noinput -v 2 "$PAGE_TESTS" >"$out" 2>&1
rc=$?
grep -E '^test_| \.\.\. |^(FAIL|ERROR):|^Ran |^OK|^FAILED' "$out"
ran=$(grep -oE '^Ran [0-9]+ tests?' "$out" | tail -1 | grep -oE '[0-9]+')
if [ -z "$ran" ]; then
  tail -n 30 "$out"
  abort "the page tests did not run (exit $rc; see $out)"
fi
bad=$(grep -E '^FAILED \(' "$out" | tail -1 | grep -oE '(failures|errors)=[0-9]+' | awk -F= '{n += $2} END {print n + 0}')
[ "$rc" -ne 0 ] && [ "$bad" -eq 0 ] && bad=1
passed=$((passed + ran - bad)) failed=$((failed + bad))
report
echo "[plugin-wheel] checks: $passed ok, $failed failed"
[ "$failed" -eq 0 ]
