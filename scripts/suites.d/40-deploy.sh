# The deployment a user runs, run: the images of deploy/images/ built with podman (cached in
# $UNICOP_CACHE, deploy/lib.sh), compose.yaml started with podman-compose under its own project
# name and ports, and a real NetBox edit reconciled end to end by the composed services, the AWX
# double standing in for the user's AWX (on the host, bound to the compose network's gateway only:
# it runs the real playbooks with the stack's ansible-runner, which a container would have to carry).
#
# Counted checks ("<passed> <failed>" to $SUITE_RESULT), in order; a failed step ends the suite
# (what follows would only fail for the same reason) and the teardown still runs:
#   1. the five images build (or load from the cache)
#   2. the unicop runtime image holds no dev dependency and no npm, tsx or tsc
#   3. `podman-compose up -d`: every service healthy (its HEALTHCHECK, run by `podman healthcheck
#      run`: podman 4.3 runs none by itself), the one-shots (topics, bootstrap) exited 0
#   4. a site created and edited through the composed NetBox's REST API (as `admin`: the `unicop`
#      user's own changes are echoes): a run of its current hash succeeded in NetBox
#   5. that run's outcome event is on the composed Kafka (unicop.outcomes, key = the root)
#   6. the `unicop` token (a normal user, not a superuser) is refused outside its object permissions:
#      deleting that site and listing sites answer 403, the site is kept, and the user holds
#      exactly the permissions deploy/netbox/accounts.py grants (docs/decisions/0030)
#   7. the workers' /metrics answers a throwaway container on the compose network at
#      http://workers:9464 (not published) and counts the edit's succeeded run; POST /sweep is
#      refused from there (403) and answered inside the workers container (200)
#   8. `--scale workers=3`: three workers containers running and healthy
#   9. 20 new roots, each changed twice, all reconciled (in sync, a run of the hash succeeded)
#  10. no two runs of one root overlap (run started/finished intervals from the plugin API)
#  11. upgrade: `down` (volumes kept), a rebuilt netbox-unicop image carrying a new plugin
#      migration, `up`: the migration is applied and the earlier sites, roots and runs are there
#  12. teardown: `down -v`, and nothing of the project is left (containers, named and anonymous
#      volumes, network, the double) — the same teardown runs from a trap whatever happens
#
# Cached in $UNICOP_CACHE between runs: the images (deploy/lib.sh), and NetBox's freshly migrated
# database, restored into the new volume on a warm run when NetBox, the plugin's migrations and the
# PostgreSQL image are unchanged (a cold run migrates from nothing: 6-10 minutes here);
# UNICOP_DEPLOY_FRESH_DB=1 always migrates from nothing.
#
# Ports (127.0.0.1 only, apart from the double on the compose network's gateway): NetBox 28000,
# bridge 28080, AWX double 28052 (UNICOP_DEPLOY_*_PORT); refused if they collide with var/stack.env.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$repo/deploy/lib.sh"
set +e
: "${UNICOP_VAR:=$repo/var}"
: "${SUITE_RESULT:=$UNICOP_VAR/test/40-deploy.result}"
mkdir -p "$(dirname "$SUITE_RESULT")"

project="${UNICOP_DEPLOY_PROJECT:-unicop-deploytest}"
work="$UNICOP_VAR/deploy-test"
netbox_port="${UNICOP_DEPLOY_NETBOX_PORT:-28000}"
bridge_port="${UNICOP_DEPLOY_BRIDGE_PORT:-28080}"
awx_port="${UNICOP_DEPLOY_AWX_PORT:-28052}"
export UNICOP_IMAGE_TAG=deploytest IMAGE_TAG=deploytest
network="${project}_default"
services=(postgres redis kafka netbox netbox-worker bridge workers)
oneshots=(kafka-topics netbox-bootstrap)
started=$SECONDS

passed=0 failed=0 reported=0 double_pid=
say() { printf '[deploy %4ds] %s\n' $((SECONDS - started)) "$*" >&2; }
report() { [ $reported = 1 ] || { echo "$passed $failed" >"$SUITE_RESULT"; reported=1; }; }
ok() { passed=$((passed + 1)); say "ok: $1"; }
fail() { failed=$((failed + 1)); say "FAILED: $1"; }
# A step that cannot go on: counted as one failure; the trap tears down and reports.
abort() { fail "$*"; exit 1; }

compose() {
  "$podman_compose" -p "$project" -f "$repo/compose.yaml" --env-file "$work/compose.env" "$@"
}

# The anonymous volumes (an image's VOLUME not mounted by compose, e.g. the topic job's Kafka data
# directory) of the project's containers: podman-compose's `down -v` removes only named volumes.
# Each one seen is remembered in $work/anon-volumes, so that the leftover check knows them.
anon_volumes() {
  local c v
  for c in $(podman ps -aq --filter "label=io.podman.compose.project=$project"); do
    podman inspect --format '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}}{{"\n"}}{{end}}{{end}}' "$c" 2>/dev/null
  done | sort -u | while read -r v; do
    [ -n "$v" ] && [ -z "$(podman volume inspect --format '{{index .Labels "io.podman.compose.project"}}' "$v" 2>/dev/null)" ] && echo "$v"
  done | tee -a "$work/anon-volumes"
}

# compose_down [-v] — the user's `down`, then the anonymous volumes it leaves behind. podman-compose
# 1.6's `down` removes only the replicas compose.yaml declares (one per service): replicas added
# with `--scale` are removed first (the README says so too), else their dependencies stay as well.
compose_down() {
  local anon
  anon=$(anon_volumes)
  podman ps -a --format '{{.Names}}' --filter "label=io.podman.compose.project=$project" |
    grep -E '_([2-9]|[1-9][0-9]+)$' | xargs -r podman rm -f -v -t 20 >>"$work/compose.log" 2>&1
  compose down "$@" -t 20 >>"$work/compose.log" 2>&1
  # shellcheck disable=SC2086 # volume names
  [ -z "$anon" ] || podman volume rm -f $anon >/dev/null 2>&1
}

# Everything of the project, by label and name: containers, volumes, the network; and the double.
teardown() {
  [ -n "$double_pid" ] && kill "$double_pid" 2>/dev/null && wait "$double_pid" 2>/dev/null
  double_pid=
  [ -n "${podman_compose:-}" ] && [ -f "$work/compose.env" ] && compose_down -v
  podman ps -aq --filter "label=io.podman.compose.project=$project" | xargs -r podman rm -f -v -t 5 >/dev/null 2>&1
  podman pod ls -q --filter "name=pod_$project" | xargs -r podman pod rm -f >/dev/null 2>&1
  podman volume ls -q --filter "label=io.podman.compose.project=$project" | xargs -r podman volume rm -f >/dev/null 2>&1
  podman network exists "$network" && podman network rm -f "$network" >/dev/null 2>&1
  return 0
}
leftovers() {
  {
    podman ps -a --format '{{.Names}}' --filter "label=io.podman.compose.project=$project"
    podman volume ls -q --filter "label=io.podman.compose.project=$project"
    sort -u "$work/anon-volumes" 2>/dev/null | while read -r v; do podman volume exists "$v" && echo "volume $v"; done
    podman network exists "$network" && echo "network $network"
    [ -n "$double_pid" ] && kill -0 "$double_pid" 2>/dev/null && echo "AWX double (pid $double_pid)"
  } | tr '\n' ' '
}
on_exit() {
  teardown
  report
  say "$passed passed, $failed failed ($((SECONDS - started))s)"
}
trap on_exit EXIT
trap 'exit 1' INT TERM

# ------------------------------------------------------------------------------------------------
# preparation

ensure_podman
podman_compose=$(ensure_podman_compose) || abort "podman-compose could not be installed"
stack_ports=$(grep -oE ':[0-9]+' "$UNICOP_VAR/stack.env" 2>/dev/null | tr -d : | sort -u | tr '\n' ' ')
for p in "$netbox_port" "$bridge_port" "$awx_port"; do
  [[ " $stack_ports " == *" $p "* ]] && abort "port $p is the dev stack's (var/stack.env): set UNICOP_DEPLOY_*_PORT"
done
teardown # a previous run killed before its trap
for p in "$netbox_port" "$bridge_port" "$awx_port"; do
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && abort "127.0.0.1:$p is in use"
done
rm -rf "$work"
mkdir -p "$work/awx-double" "$work/targets"
"$repo/deploy/compose/init-secrets" "$work/secrets" 2>/dev/null
od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$work/secrets/awx_token"
chmod 644 "$work/secrets/awx_token"

# ------------------------------------------------------------------------------------------------
# 1-2. images

t=$SECONDS
if "$repo/deploy/build-images" >"$work/build.log" 2>&1; then
  ok "images built or loaded from the cache in $((SECONDS - t))s ($(grep -c 'building' "$work/build.log") built)"
else
  tail -n 20 "$work/build.log" >&2
  abort "deploy/build-images failed (see $work/build.log)"
fi

# The unicop runtime image carries no dev dependency in /app/node_modules, no npm, no tsx. (Debian's
# nodejs package brings type definitions of its own under /usr/share/nodejs: not ours, not code.)
# shellcheck disable=SC2046 # one argument per dev dependency name
dev_found=$(podman run --rm --entrypoint node "localhost/unicop:$IMAGE_TAG" -e '
  const { existsSync } = require("node:fs");
  console.log(process.argv.slice(1).filter((name) => existsSync(`/app/node_modules/${name}/package.json`)).join(" "));' $(python3 -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["devDependencies"]))' "$repo/package.json") 2>/dev/null)
tools_found=$(podman run --rm --entrypoint sh "localhost/unicop:$IMAGE_TAG" -c 'command -v npm npx tsx tsc; ls /app' 2>/dev/null | tr '\n' ' ')
if [ -z "$dev_found" ] && [[ $tools_found != *npm* && $tools_found != *tsx* && $tools_found != *tsc* ]]; then
  ok "the unicop runtime image: no dev dependency, no npm/tsx/tsc (/app: $tools_found)"
else
  fail "the unicop runtime image carries dev dependencies '${dev_found}' or tools: $tools_found"
fi

# ------------------------------------------------------------------------------------------------
# 3. up, healthy

# The network first, so that the AWX double can listen on its gateway (host.containers.internal).
podman network create "$network" >/dev/null || abort "podman network create $network failed"
gateway=$(podman network inspect "$network" --format '{{range .Subnets}}{{.Gateway}}{{end}}')
[ -n "$gateway" ] || abort "no gateway on $network"
cat >"$work/compose.env" <<ENV
UNICOP_IMAGE_TAG=deploytest
UNICOP_SECRETS_DIR=$work/secrets
UNICOP_NETBOX_PORT=$netbox_port
UNICOP_BRIDGE_PORT=$bridge_port
UNICOP_AWX_URL=http://host.containers.internal:$awx_port
ENV

cname() { echo "${project}_$1_${2:-1}"; }

# A warm run starts NetBox on a copy of the database that a cold run's `netbox upgrade` migrated
# from nothing with the same NetBox, plugin migrations and PostgreSQL image (NetBox's ~340
# migrations take 6-10 minutes here): restored into the fresh volume before NetBox starts, so
# NetBox's own start-up still checks and applies migrations. UNICOP_DEPLOY_FRESH_DB=1 skips it.
db_key=$({
  sha256sum <"$repo/deploy/images/netbox-unicop.Dockerfile" # content only: the clone's path must not count
  cat "$repo"/netbox-plugin/unicop/migrations/*.py | sha256sum
  podman image inspect --format '{{.Id}}' "localhost/unicop-postgres:$IMAGE_TAG"
} | sha256sum | cut -c1-16)
db_dump="$UNICOP_CACHE/db/netbox-$db_key.sql.gz"
mkdir -p "$UNICOP_CACHE/db"
t=$SECONDS
if [ -s "$db_dump" ] && [ -z "${UNICOP_DEPLOY_FRESH_DB:-}" ]; then
  compose up -d postgres >"$work/compose.log" 2>&1
  for _ in $(seq 1 120); do podman healthcheck run "$(cname postgres)" >/dev/null 2>&1 && break; sleep 2; done
  if { echo 'SET ROLE netbox;'; gunzip -c "$db_dump"; } |
      podman exec -i "$(cname postgres)" psql -X -q -v ON_ERROR_STOP=1 -U postgres -d netbox >"$work/db-restore.log" 2>&1; then
    say "database restored from $db_dump (a cold run's fresh migration) in $((SECONDS - t))s"
  else
    abort "restoring $db_dump failed (see $work/db-restore.log; remove the file to start from nothing)"
  fi
  db_restored=1
else
  db_restored=
fi

t=$SECONDS
compose up -d >>"$work/compose.log" 2>&1 || { tail -n 30 "$work/compose.log" >&2; abort "podman-compose up -d failed (see $work/compose.log)"; }
say "podman-compose up -d in $((SECONDS - t))s; waiting for health (a new NetBox database migrates for minutes)"

# The AWX double with the demo's templates, its playbooks writing to this run's own target dir; on
# the gateway address, which exists on the host once a container has joined the network (nothing
# calls AWX before the first edit, and the workers only wait for Kafka, Redis and NetBox).
ansible_bin=$(sed -n 's/^UNICOP_ANSIBLE_BIN=//p' "$UNICOP_VAR/stack.env" | tail -n 1)
[ -x "$ansible_bin/ansible-runner" ] || "$repo/scripts/stack.d/ansible.sh" up >/dev/null 2>&1
ansible_bin=$(sed -n 's/^UNICOP_ANSIBLE_BIN=//p' "$UNICOP_VAR/stack.env" | tail -n 1)
sed -e "s#\.\./\.\./awx-playbooks#$repo/awx-playbooks#" -e "s#\.\./\.\./var/targets#$work/targets#" \
  "$repo/test/awx-double/templates.example.yaml" >"$work/awx-double.yaml"
(cd "$repo" && UNICOP_AWX_DOUBLE_TOKEN=$(cat "$work/secrets/awx_token") \
  UNICOP_AWX_DOUBLE_NOTIFY_URL="http://127.0.0.1:$bridge_port/webhooks/awx" \
  UNICOP_AWX_DOUBLE_NOTIFY_TOKEN=$(cat "$work/secrets/awx_webhook_secret") \
  exec node --import tsx test/awx-double/main.ts --config "$work/awx-double.yaml" \
    --state-dir "$work/awx-double" --host "$gateway" --port "$awx_port" --ansible-bin "$ansible_bin" \
  >"$work/awx-double.log" 2>&1) &
double_pid=$!
for _ in $(seq 1 150); do
  grep -q 'awx-double listening' "$work/awx-double.log" 2>/dev/null && break
  kill -0 "$double_pid" 2>/dev/null || break
  sleep 0.2
done
grep -q 'awx-double listening' "$work/awx-double.log" || { cat "$work/awx-double.log" >&2; abort "the AWX double did not start"; }


# wait_healthy NAME SECONDS — until `podman healthcheck run` passes (a container that exits in
# between is restarted by its restart policy, so only the deadline fails it).
wait_healthy() {
  local c=$1 deadline=$((SECONDS + $2))
  podman container exists "$c" || { say "$c does not exist"; return 1; }
  until podman healthcheck run "$c" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || {
      say "$c not healthy within $2s ($(podman inspect --format '{{.State.Status}}, restarted {{.RestartCount}}x' "$c" 2>/dev/null))"
      return 1
    }
    sleep 3
  done
}
wait_exited_0() {
  local c=$1 deadline=$((SECONDS + $2)) s
  while :; do
    s=$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$c" 2>/dev/null)
    [ "$s" = "exited 0" ] && return 0
    # A failed attempt is restarted (restart: on-failure): only the deadline fails it.
    ((SECONDS < deadline)) || { say "$c still '$s' after $2s"; return 1; }
    sleep 3
  done
}
dump_logs() { local s; for s in "$@"; do echo "--- $s" >&2; podman logs --tail 25 "$(cname "$s")" 2>&1 | cut -c1-300 >&2; done; }

t=$SECONDS
bad=
for s in "${services[@]}"; do wait_healthy "$(cname "$s")" 1500 || bad+=" $s"; done
for s in "${oneshots[@]}"; do wait_exited_0 "$(cname "$s")" 600 || bad+=" $s"; done
if [ -z "$bad" ]; then
  ok "compose up: ${services[*]} healthy, ${oneshots[*]} done, in $((SECONDS - t))s${db_restored:+ (database from the cache)}"
  # The freshly migrated database, for the next warm run (before anything is edited).
  if [ -z "$db_restored" ] && [ ! -s "$db_dump" ]; then
    podman exec "$(cname postgres)" pg_dump -U postgres --no-owner --no-privileges --exclude-table-data=users_token -d netbox 2>/dev/null |
      gzip -1 >"$db_dump.tmp" && [ -s "$db_dump.tmp" ] && mv "$db_dump.tmp" "$db_dump"
    rm -f "$db_dump.tmp"
    find "$UNICOP_CACHE/db" -name 'netbox-*.sql.gz' ! -name "netbox-$db_key.sql.gz" -mtime +7 -delete 2>/dev/null
  fi
else
  # shellcheck disable=SC2086
  dump_logs $bad
  abort "compose up: not healthy or failed:$bad"
fi

# ------------------------------------------------------------------------------------------------
# 4-5. one real edit, end to end

export NETBOX_URL="http://127.0.0.1:$netbox_port" NETBOX_TOKEN_FILE="$work/secrets/netbox_api_token" \
  NETBOX_ADMIN_PASSWORD_FILE="$work/secrets/netbox_admin_password" CHECK_TIMEOUT=600
check_py() { python3 "$repo/deploy/test/compose_check.py" "$@"; }

t=$SECONDS
if edited=$(check_py edit 2>"$work/check.err"); then
  root_key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["root"])' "$edited")
  run_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["run_id"])' "$edited")
  ok "NetBox edit through the composed REST API: $root_key reconciled, run $run_id succeeded in NetBox ($((SECONDS - t))s)"
else
  cat "$work/check.err" >&2
  dump_logs bridge workers netbox-worker
  abort "the edit was not reconciled"
fi

# The outcome event on the composed Kafka, read inside the kafka container.
outcomes=$(podman exec "$(cname kafka)" kafka tool org.apache.kafka.tools.consumer.ConsoleConsumer \
  --bootstrap-server 127.0.0.1:9092 --topic unicop.outcomes --from-beginning --timeout-ms 15000 \
  --property print.key=true 2>/dev/null)
if awk -F'\t' -v k="$root_key" -v r="$run_id" '$1 == k && index($2, r) && index($2, "succeeded") { found = 1 } END { exit !found }' <<<"$outcomes"; then
  ok "the outcome of run $run_id (succeeded) is on the composed Kafka's unicop.outcomes under $root_key"
else
  fail "no succeeded outcome for $root_key / run $run_id on unicop.outcomes ($(grep -c . <<<"$outcomes") events read)"
fi

# ------------------------------------------------------------------------------------------------
# 6. the unicop account is least-privilege (deploy/netbox/accounts.py): its token just reconciled a
# root; outside its object permissions NetBox refuses it

if result=$(check_py refused "${root_key#site/}" 2>&1); then
  ok "the unicop token (no superuser) is refused outside its object permissions: DELETE site ${root_key#site/} and list sites → 403, site kept; exactly accounts.py's permissions ($result)"
else
  fail "the unicop token outside its object permissions: $result"
fi

# ------------------------------------------------------------------------------------------------
# 7. the workers' /metrics from another container on the compose network (not published: a
# Prometheus there scrapes workers:9464); POST /sweep refused from there, answered in the container

probe_js='
const url = process.argv[1];
const metrics = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(15000) });
const body = await metrics.text();
const sweep = await fetch(`${url}/sweep`, { method: "POST", signal: AbortSignal.timeout(15000) });
console.log(JSON.stringify({ metrics: metrics.status, succeeded_runs_counted: body.includes(`unicop_runs_total{state="succeeded"`), sweep: sweep.status }));'
probe=$(podman run --rm --pull=never --network "$network" --entrypoint node "localhost/unicop:$IMAGE_TAG" \
  --input-type=module -e "$probe_js" http://workers:9464 2>&1 | tail -n 1)
inside=$(podman exec "$(cname workers)" node --input-type=module -e '
const res = await fetch("http://127.0.0.1:9464/sweep", { method: "POST", signal: AbortSignal.timeout(60000) });
console.log(res.status);' 2>&1 | tail -n 1)
if [ "$probe" = '{"metrics":200,"succeeded_runs_counted":true,"sweep":403}' ] && [ "$inside" = 200 ]; then
  ok "workers /metrics answers another container on the compose network (http://workers:9464, the edit's succeeded run counted); POST /sweep: 403 from there, 200 inside the workers container"
else
  fail "workers /metrics from another container on the compose network: $probe; POST /sweep inside the workers container: $inside"
fi

# ------------------------------------------------------------------------------------------------
# 8-10. three workers, 20 roots, no overlapping runs

t=$SECONDS
compose up -d --scale workers=3 >>"$work/compose.log" 2>&1
bad=
for i in 1 2 3; do wait_healthy "$(cname workers "$i")" 300 || bad+=" workers_$i"; done
running=$(podman ps --format '{{.Names}}' --filter "label=io.podman.compose.project=$project" --filter "label=io.podman.compose.service=workers" | grep -c .)
if [ -z "$bad" ] && [ "$running" = 3 ]; then
  ok "scaled to 3 workers containers, all healthy ($((SECONDS - t))s)"
else
  abort "scaling the workers to 3: $running running, not healthy:${bad:- none}"
fi

t=$SECONDS
if many=$(CHECK_TIMEOUT=900 check_py many 20 2>"$work/check.err"); then
  keys=$(python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])["roots"]))' "$many")
  nruns=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["runs"])' "$many")
  ok "20 roots created and changed twice, all reconciled by 3 workers ($nruns runs, $((SECONDS - t))s)"
else
  cat "$work/check.err" >&2
  dump_logs workers
  abort "the 20 roots were not all reconciled"
fi

# shellcheck disable=SC2086 # keys is a space-separated list of root keys
if result=$(check_py overlaps $keys 2>&1); then
  ok "no two runs of one root overlap ($result)"
else
  fail "overlapping runs: $result"
fi

# ------------------------------------------------------------------------------------------------
# 11. upgrade: a new image with a new plugin migration, the same volumes

t=$SECONDS
before=$(check_py counts)
migration=$(cd "$repo/netbox-plugin/unicop/migrations" && ls [0-9][0-9][0-9][0-9]_*.py | sort | tail -n 1)
migration=${migration%.py}
if [ -z "$migration" ]; then
  fail "upgrade: no plugin migration found to depend on"
else
  up_ctx="$work/upgrade-image"
  mkdir -p "$up_ctx"
  sed -e "s/@LATEST@/$migration/" "$repo/deploy/test/upgrade_migration.py.in" >"$up_ctx/9999_deploy_upgrade_check.py"
  cp "$repo/deploy/test/upgrade.Dockerfile" "$up_ctx/Dockerfile"
  if ! podman build --format docker --pull=never --build-arg BASE=localhost/netbox-unicop:deploytest \
      -t localhost/netbox-unicop:deploytest-upgrade "$up_ctx" >"$work/upgrade-build.log" 2>&1; then
    fail "upgrade: building the upgraded image failed (see $work/upgrade-build.log)"
  else
    compose_down # named volumes kept, as a user's upgrade does
    podman tag localhost/netbox-unicop:deploytest-upgrade localhost/netbox-unicop:deploytest
    podman network exists "$network" || podman network create "$network" >/dev/null
    compose up -d >>"$work/compose.log" 2>&1
    bad=
    for s in netbox netbox-worker bridge workers; do wait_healthy "$(cname "$s")" 900 || bad+=" $s"; done
    wait_exited_0 "$(cname netbox-bootstrap)" 300 || bad+=" netbox-bootstrap"
    applied=$(podman exec "$(cname netbox)" netbox showmigrations unicop 2>/dev/null | grep -c '\[X\] 9999_deploy_upgrade_check')
    after=$(check_py counts)
    # Kept: the same sites and roots, and every run (a sweep on start may add runs, never remove one).
    kept=$(python3 -c 'import json, sys; b, a = (json.loads(x) for x in sys.argv[1:3])
print(int(a["sites"] == b["sites"] and a["roots"] == b["roots"] and a["runs"] >= b["runs"] > 0))' "$before" "$after" 2>/dev/null)
    if [ -z "$bad" ] && [ "$applied" = 1 ] && [ "$kept" = 1 ]; then
      ok "upgrade: new image, same volumes — migration 9999_deploy_upgrade_check applied, data kept $after ($((SECONDS - t))s)"
    else
      fail "upgrade: unhealthy:${bad:- none}; migration applied: $applied; before $before, after $after"
    fi
  fi
fi

# ------------------------------------------------------------------------------------------------
# 12. teardown

teardown
left=$(leftovers)
if [ -z "$left" ]; then ok "down -v: no container, volume or network of $project left, the double stopped"
else fail "left after teardown: $left"; fi
