# The deployment a user runs, run: the images of deploy/images/ built with podman (cached in
# $UNICOP_CACHE, deploy/lib.sh), compose.yaml started with podman-compose under its own project
# name and ports, and a real NetBox edit reconciled end to end by the composed services with the
# local stack's real AWX as the user's AWX (var/stack.env: UNICOP_AWX_REAL_URL, its token, its
# template ids). Real AWX listens on 127.0.0.1 only, so the suite runs a relay (deploy/test/
# awx-relay.ts) on the compose network's gateway address, which the containers call
# host.containers.internal; the composed NetBox's root catalogue names real AWX's template ids.
# AWX's notification templates post to the dev stack's bridge, not the composed one: the composed
# workers follow their jobs by polling (UNICOP_POLL_*), as they do whenever a notification is lost.
#
# Counted checks ("<passed> <failed>" to $SUITE_RESULT), in order; a failed step ends the suite
# (what follows would only fail for the same reason) and the teardown still runs:
#   1. the five images build (or load from the cache)
#   2. the unicop runtime image holds no dev dependency and no npm, tsx or tsc
#   3. `podman-compose up -d`: every service healthy (its HEALTHCHECK, run by `podman healthcheck
#      run`: podman 4.3 runs none by itself), the one-shots (topics, bootstrap) exited 0
#   4. from inside the workers container, with its UNICOP_AWX_URL and token: real AWX answers
#      through the relay (/api/v2/ping/ with the stack's AWX version, /api/v2/me/ 200)
#   5. a site created and edited through the composed NetBox's REST API (as `admin`: the `unicop`
#      user's own changes are echoes): a run of its current hash succeeded in NetBox, and real AWX's
#      /api/v2/jobs/<id>/ shows that run's job successful, of the catalogue's site template
#   6. that run's outcome event is on the composed Kafka (unicop.outcomes, key = the root)
#   7. the `unicop` token (a normal user, not a superuser) is refused outside its object permissions:
#      deleting that site and listing webhooks answer 403, the site is kept, and the user holds
#      exactly the permissions deploy/netbox/accounts.py grants (docs/decisions/0030)
#   8. the workers' /metrics answers a throwaway container on the compose network at
#      http://workers:9464 (not published) and counts the edit's succeeded run; POST /sweep is
#      refused from there (403) and, without a credential, inside the workers container too (401)
#   9. `--scale workers=3`: three workers containers running and healthy
#  10. 20 new roots, each changed twice, all reconciled (in sync, a run of the hash succeeded), and
#      every AWX job of their runs is in real AWX, of the site template, its status the run's
#  11. no two runs of one root overlap (run started/finished intervals from the plugin API)
#  12. upgrade: `down` (volumes kept), a rebuilt netbox-unicop image carrying a new plugin
#      migration, `up`: the migration is applied and the earlier sites, roots and runs are there
#  13. teardown: `down -v`, and nothing of the project is left (containers, named and anonymous
#      volumes, network, the relay) — the same teardown runs from a trap whatever happens
#
# Real AWX shares one target directory (UNICOP_AWX_TARGET_DIR) with the dev stack's runs, and the
# playbooks fence per root directory there (site-<id>/unicop-state.json). So that a composed site
# never meets a dev site's (or an earlier suite run's) fence, the composed NetBox's site ids start at
# a number of this run's own (1e9 + 100 per second of the clock): far above any dev site id, below
# 2^31; the teardown removes the target directories of such sites.
#
# Cached in $UNICOP_CACHE between runs: the images (deploy/lib.sh), and NetBox's freshly migrated
# database, restored into the new volume on a warm run when NetBox, the plugin's migrations and the
# PostgreSQL image are unchanged (a cold run migrates from nothing: 6-10 minutes here);
# UNICOP_DEPLOY_FRESH_DB=1 always migrates from nothing.
#
# Ports (127.0.0.1 only, apart from the relay on the compose network's gateway): NetBox 28000,
# bridge 28080, AWX relay 28052 (UNICOP_DEPLOY_*_PORT); refused if they collide with var/stack.env.
# UNICOP_DEPLOY_AWX_RELAY_TO points the relay elsewhere than real AWX (e.g. nowhere, to see the
# suite fail at check 4).
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
services=(postgres redis netbox-redis kafka netbox netbox-worker netbox-hashes bridge workers)
oneshots=(kafka-topics netbox-bootstrap)
started=$SECONDS

passed=0 failed=0 reported=0 relay_pid=
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

# Everything of the project, by label and name: containers, volumes, the network; the relay; what
# real AWX's jobs wrote for this run's sites.
teardown() {
  [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null && wait "$relay_pid" 2>/dev/null
  relay_pid=
  [ -n "${podman_compose:-}" ] && [ -f "$work/compose.env" ] && compose_down -v
  podman ps -aq --filter "label=io.podman.compose.project=$project" | xargs -r podman rm -f -v -t 5 >/dev/null 2>&1
  podman pod ls -q --filter "name=pod_$project" | xargs -r podman pod rm -f >/dev/null 2>&1
  podman volume ls -q --filter "label=io.podman.compose.project=$project" | xargs -r podman volume rm -f >/dev/null 2>&1
  podman network exists "$network" && podman network rm -f "$network" >/dev/null 2>&1
  # Site ids from 1e9 up are the deploy suite's only (see the header): this run's, or a killed one's.
  local d n
  if [ -d "${awx_targets:-}" ]; then
    for d in "$awx_targets"/site-*; do
      n=${d##*/site-}
      [[ $n =~ ^[0-9]{10}$ ]] && ((n >= 1000000000 && n < 2147483648)) && rm -rf -- "$d"
    done
  fi
  return 0
}
leftovers() {
  {
    podman ps -a --format '{{.Names}}' --filter "label=io.podman.compose.project=$project"
    podman volume ls -q --filter "label=io.podman.compose.project=$project"
    sort -u "$work/anon-volumes" 2>/dev/null | while read -r v; do podman volume exists "$v" && echo "volume $v"; done
    podman network exists "$network" && echo "network $network"
    [ -n "$relay_pid" ] && kill -0 "$relay_pid" 2>/dev/null && echo "AWX relay (pid $relay_pid)"
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
# The stack's real AWX: its address, the token the stack's bootstrap made (a file reference; copied
# into the composed workers' secret, never printed), its template ids, its target directory.
stack_fact() { sed -n "s/^$1=//p" "$UNICOP_VAR/stack.env" 2>/dev/null | tail -n 1; }
awx_url=$(stack_fact UNICOP_AWX_REAL_URL)
awx_token_ref=$(stack_fact UNICOP_AWX_REAL_TOKEN)
awx_templates=$(stack_fact UNICOP_AWX_TEMPLATE_IDS)
awx_version=$(stack_fact UNICOP_AWX_VERSION)
awx_targets=$(stack_fact UNICOP_AWX_TARGET_DIR)
[ -n "$awx_url" ] && [ -n "$awx_token_ref" ] && [ -n "$awx_templates" ] && [ -n "$awx_version" ] ||
  abort "var/stack.env records no real AWX (UNICOP_AWX_REAL_URL, UNICOP_AWX_REAL_TOKEN, UNICOP_AWX_TEMPLATE_IDS, UNICOP_AWX_VERSION): scripts/stack up"
seen_version=$(curl -sS -m 30 "$awx_url/api/v2/ping/" 2>/dev/null | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])' 2>/dev/null)
[ "$seen_version" = "$awx_version" ] || abort "the stack's real AWX at $awx_url does not answer /api/v2/ping/ with $awx_version (got '${seen_version}'): scripts/stack status"
teardown # a previous run killed before its trap
for p in "$netbox_port" "$bridge_port" "$awx_port"; do
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && abort "127.0.0.1:$p is in use"
done
rm -rf "$work"
mkdir -p "$work"
"$repo/deploy/compose/init-secrets" "$work/secrets" 2>/dev/null

case $awx_token_ref in
  file:*) cp "${awx_token_ref#file:}" "$work/secrets/awx_token" || abort "cannot read the AWX token file named by UNICOP_AWX_REAL_TOKEN" ;;
  env:*) abort "UNICOP_AWX_REAL_TOKEN is an env: reference; the suite needs a file: reference or the token" ;;
  *) printf '%s\n' "$awx_token_ref" >"$work/secrets/awx_token" ;;
esac
chmod 644 "$work/secrets/awx_token"
# The composed NetBox's root catalogue: deploy/compose/plugin-config.json with real AWX's template
# ids for its kinds (the names the stack's AWX bootstrap gives them, as the dev NetBox has them).
python3 - "$repo/deploy/compose/plugin-config.json" "$awx_templates" >"$work/plugin-config.json" <<'PY' ||
import json, sys
config, ids = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
names = {'prefix': 'unicop-prefix', 'site': 'unicop-site', 'tenant': 'unicop-site-with-approval'}
for kind, spec in config['root_kinds'].items():
    spec['awx_template'] = ids[names[kind]]
json.dump(config, sys.stdout, indent=2)
PY
  abort "cannot write the composed root catalogue from UNICOP_AWX_TEMPLATE_IDS ($awx_templates)"
chmod 644 "$work/plugin-config.json"

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

# The network first, so that the AWX relay can listen on its gateway (host.containers.internal).
podman network create "$network" >/dev/null || abort "podman network create $network failed"
gateway=$(podman network inspect "$network" --format '{{range .Subnets}}{{.Gateway}}{{end}}')
[ -n "$gateway" ] || abort "no gateway on $network"
cat >"$work/compose.env" <<ENV
UNICOP_IMAGE_TAG=deploytest
UNICOP_SECRETS_DIR=$work/secrets
UNICOP_NETBOX_PORT=$netbox_port
UNICOP_BRIDGE_PORT=$bridge_port
UNICOP_AWX_URL=http://host.containers.internal:$awx_port
UNICOP_PLUGIN_CONFIG=$work/plugin-config.json
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

# The relay to real AWX, on the gateway address, which exists on the host once a container has
# joined the network (nothing calls AWX before the first edit; the workers wait for Kafka, Redis and
# NetBox only). It logs one line per request, never a header.
relay_to="${UNICOP_DEPLOY_AWX_RELAY_TO:-$awx_url}"
(cd "$repo" && exec node --import tsx deploy/test/awx-relay.ts --listen "$gateway:$awx_port" --to "$relay_to" \
  >"$work/awx-relay.log" 2>&1) &
relay_pid=$!
for _ in $(seq 1 400); do
  grep -q 'awx-relay listening' "$work/awx-relay.log" 2>/dev/null && break
  kill -0 "$relay_pid" 2>/dev/null || break
  sleep 0.2
done
grep -q 'awx-relay listening' "$work/awx-relay.log" || { cat "$work/awx-relay.log" >&2; abort "the AWX relay did not start on $gateway:$awx_port"; }

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
# dump_logs SERVICE[_N]… — the last lines of each container (replica N, default 1).
dump_logs() {
  local s
  for s in "$@"; do
    echo "--- $s" >&2
    if [[ $s =~ ^(.+)_([0-9]+)$ ]]; then
      podman logs --tail 25 "$(cname "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}")" 2>&1 | cut -c1-300 >&2
    else
      podman logs --tail 25 "$(cname "$s")" 2>&1 | cut -c1-300 >&2
    fi
  done
}

t=$SECONDS
bad=
for s in "${services[@]}"; do wait_healthy "$(cname "$s")" 1500 || bad+=" $s"; done
# compose.yaml runs two RQ workers (netbox-worker deploy.replicas: 2, decision 0063): the second too.
wait_healthy "$(cname netbox-worker 2)" 300 || bad+=" netbox-worker_2"
for s in "${oneshots[@]}"; do wait_exited_0 "$(cname "$s")" 600 || bad+=" $s"; done
if [ -z "$bad" ]; then
  ok "compose up: ${services[*]} healthy (netbox-worker × 2), ${oneshots[*]} done, in $((SECONDS - t))s${db_restored:+ (database from the cache)}"
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
# 4. the composed workers reach real AWX: asked from inside the workers container with its own
# UNICOP_AWX_URL and token file, as the reconciler will

reach=$(podman exec "$(cname workers)" node --input-type=module -e '
const url = process.env.UNICOP_AWX_URL;
const token = (await import("node:fs")).readFileSync("/run/secrets/awx_token", "utf8").trim();
const ask = (path, headers = {}) => fetch(`${url}${path}`, { headers, signal: AbortSignal.timeout(30000) });
const version = await ask("/api/v2/ping/").then(async (r) => (r.ok ? (await r.json()).version : `HTTP ${r.status}`), (e) => e.message);
const me = await ask("/api/v2/me/", { authorization: `Bearer ${token}` }).then((r) => r.status, (e) => e.message);
console.log(JSON.stringify({ url, version, me }));' 2>&1 | tail -n 1)
if [ "$reach" = "{\"url\":\"http://host.containers.internal:$awx_port\",\"version\":\"$awx_version\",\"me\":200}" ]; then
  ok "the workers container reaches the stack's real AWX $awx_version through the relay ($gateway:$awx_port -> $relay_to), its token accepted"
else
  tail -n 5 "$work/awx-relay.log" >&2
  abort "the workers container does not reach real AWX $awx_version through the relay ($gateway:$awx_port -> $relay_to): $reach"
fi

# ------------------------------------------------------------------------------------------------
# 5-6. one real edit, end to end

# This run's own site ids (see the header): 1e9 + 100 per second of the clock, below 2^31.
site_base=$((1000000000 + ($(date +%s) % 10000000) * 100))
podman exec "$(cname postgres)" psql -X -q -t -A -v ON_ERROR_STOP=1 -U postgres -d netbox \
  -c "SELECT setval(pg_get_serial_sequence('dcim_site', 'id'), $site_base, false)" >/dev/null ||
  abort "could not start the composed NetBox's site ids at $site_base"

export NETBOX_URL="http://127.0.0.1:$netbox_port" NETBOX_TOKEN_FILE="$work/secrets/netbox_api_token" \
  NETBOX_ADMIN_PASSWORD_FILE="$work/secrets/netbox_admin_password" CHECK_TIMEOUT=600 \
  AWX_URL="$awx_url" AWX_TOKEN_FILE="$work/secrets/awx_token" PLUGIN_CONFIG="$work/plugin-config.json"
check_py() { python3 "$repo/deploy/test/compose_check.py" "$@"; }
# awx_summary JSON — the one-line summary `compose_check.py awx-jobs` gives.
awx_summary() { python3 -c 'import json, sys; print(json.loads(sys.argv[1])["summary"])' "$1" 2>/dev/null || echo "$1"; }

t=$SECONDS
if edited=$(check_py edit 2>"$work/check.err"); then
  root_key=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["root"])' "$edited")
  run_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["run_id"])' "$edited")
  job_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["awx_job_id"])' "$edited")
  if jobs=$(check_py awx-jobs "$root_key" 2>&1); then
    ok "NetBox edit through the composed REST API: $root_key reconciled, run $run_id succeeded in NetBox ($((SECONDS - t))s); real AWX job $job_id: $(awx_summary "$jobs")"
  else
    fail "the edit's run $run_id succeeded in NetBox, but real AWX does not agree: $jobs"
  fi
else
  cat "$work/check.err" >&2
  dump_logs bridge workers netbox-worker netbox-hashes
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
# 7. the unicop account is least-privilege (deploy/netbox/accounts.py): its token just reconciled a
# root; outside its object permissions NetBox refuses it

if result=$(check_py refused "${root_key#site/}" 2>&1); then
  ok "the unicop token (no superuser) is refused outside its object permissions: DELETE site ${root_key#site/} and list webhooks → 403, site kept; exactly accounts.py's permissions, view-only on the snapshot's objects ($result)"
else
  fail "the unicop token outside its object permissions: $result"
fi

# ------------------------------------------------------------------------------------------------
# 8. the workers' /metrics from another container on the compose network (not published: a
# Prometheus there scrapes workers:9464); POST /sweep refused from there (loopback only), and inside the
# container without a credential (401: an operator's token or break-glass, decision 0051; compose has
# neither configured, so nobody sweeps by hand there until a Keycloak realm is set)

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
if [ "$probe" = '{"metrics":200,"succeeded_runs_counted":true,"sweep":403}' ] && [ "$inside" = 401 ]; then
  ok "workers /metrics answers another container on the compose network (http://workers:9464, the edit's succeeded run counted); POST /sweep: 403 from there, 401 inside the workers container without a credential"
else
  fail "workers /metrics from another container on the compose network: $probe; POST /sweep inside the workers container: $inside"
fi

# ------------------------------------------------------------------------------------------------
# 9-11. three workers, 20 roots, no overlapping runs

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
# A cap, not a budget: real AWX runs each job in a container (10-40 s here, more under load).
if many=$(CHECK_TIMEOUT=1200 check_py many 20 2>"$work/check.err"); then
  keys=$(python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])["roots"]))' "$many")
  nruns=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["runs"])' "$many")
  took=$((SECONDS - t))
  # shellcheck disable=SC2086 # keys is a space-separated list of root keys
  if jobs=$(check_py awx-jobs $keys 2>&1); then
    ok "20 roots created and changed twice, all reconciled by 3 workers ($nruns runs, ${took}s); real AWX: $(awx_summary "$jobs")"
  else
    fail "20 roots reconciled by 3 workers ($nruns runs, ${took}s), but real AWX does not agree: $jobs"
  fi
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
# 12. upgrade: a new image with a new plugin migration, the same volumes

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
    for s in netbox netbox-worker netbox-hashes bridge workers; do wait_healthy "$(cname "$s")" 900 || bad+=" $s"; done
    wait_healthy "$(cname netbox-worker 2)" 300 || bad+=" netbox-worker_2"
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
# 13. teardown

teardown
left=$(leftovers)
if [ -z "$left" ]; then ok "down -v: no container, volume or network of $project left, the relay stopped"
else fail "left after teardown: $left"; fi
