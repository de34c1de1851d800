#!/usr/bin/env bash
# AWX 24.6.1 — the real one — from the source archive in ../shared/third-party/ (no registry serves
# AWX), on 127.0.0.1:$UNICOP_AWX_PORT. Facts and choices: docs/decisions/0024-real-awx.md.
#
# What runs (all on the host, pids under var/run/, logs under var/log/awx-*.log and var/log/awx/):
#   awx-uwsgi        the API: uwsgi --http 127.0.0.1:$UNICOP_AWX_PORT --module awx.wsgi:application
#   awx-dispatcher   awx-manage run_dispatcher (task manager, job runs, heartbeats, approvals, notifications)
#   awx-callback     awx-manage run_callback_receiver (job events from Redis into PostgreSQL)
#   awx-receptor     receptor 1.4.4, local-only, work type `local` = `ansible-runner worker`, which
#                    runs each job's playbook in a podman container (the execution environment)
# State: PostgreSQL database `awx` (role `awx`) in the stack's cluster; Redis databases
# $REDIS_DB_BROKER (broker, channels) and $REDIS_DB_CACHE (cache) of AWX's own Redis (redis-awx).
# Under $UNICOP_VAR/awx: src/ (the unpacked archive), settings.py
# (AWX_SETTINGS_FILE), projects/unicop-playbooks (-> the repository's awx-playbooks/),
# targets/ (what the playbooks write; mounted into every job container at the same path),
# jobs/ (job private data dirs), secrets/ (mode 700, never printed), containers.conf.
# Outside the clone: /etc/receptor/receptor.conf (AWX reads that fixed path,
# awx/main/tasks/receptor.py) and the caches under ${UNICOP_CACHE:-/var/cache/unicop}/awx: the
# Python 3.11 venv (immutable once built, shared by the clones), a pip wheelhouse, the receptor
# binary, the execution environment image (podman save), the verified source archives, and a
# pg_dump of the migrated + preloaded database (restored instead of migrating; with the SECRET_KEY
# it was made with, since AWX encrypts secrets in the database with it).
#
#   up       provision what is missing (each step leaves a marker in $UNICOP_VAR/awx/.state only
#            once it succeeded), start, wait for /api/v2/ping/ with capacity, bootstrap the objects
#            (scripts/awx-bootstrap.ts: organization, inventory, project, templates, token)
#   down     stop the four processes and any job container still running
#   status   one line
#   logs     tail of the process logs
#   ee       only build (or load from the cache) the execution environment image; prints its name
#   drop-db  drop the `awx` database (AWX stopped), so the next `up` restores or migrates afresh
# To start from scratch: `scripts/stack.d/awx.sh down && rm -rf var/awx` and drop the database
# (`scripts/stack.d/awx.sh drop-db`).
STACK_SERVICE=awx
source "$(dirname "$0")/common.sh"

AWX_VERSION=24.6.1
AWX_SHA256=aba8198db78df8bf3c86884cab4d2313b2476ae4bfc21268d247304abe9be411
DAB_VERSION=2024.7.1
DAB_SHA256=9983873f1df4ed188c4f4db4cf85f069a78b4e4f989e66a55e54dd452f7270f6
RECEPTOR_VERSION=1.4.4
THIRD_PARTY="${UNICOP_THIRD_PARTY:-$(cd "$UNICOP_REPO/.." && pwd)/shared/third-party}"
CACHE="${UNICOP_CACHE:-/var/cache/unicop}/awx"
PORT="$UNICOP_AWX_PORT"
WEB_PROCESSES="${UNICOP_AWX_WEB_PROCESSES:-2}"
# Redis databases: 0/1 BullMQ, 2/3 NetBox, 4/5 the plugin tests; AWX takes 10 and 11.
REDIS_DB_BROKER="${UNICOP_AWX_REDIS_DB_BROKER:-10}"
REDIS_DB_CACHE="${UNICOP_AWX_REDIS_DB_CACHE:-11}"
NODE=unicop-awx                    # CLUSTER_HOST_ID = receptor node id = the AWX instance hostname
PG_DB=awx
PG_USER=awx
# The execution environment: Debian bookworm (Python 3.11) + the host's ansible pins + what the
# playbooks call (named-checkzone from bind9-utils: awx-playbooks/prefix.yml).
EE_SUITE=bookworm
EE_DEBS=python3,python3-venv,bind9-utils,ca-certificates
EE_PIP="$(grep -E '^(ansible-core|ansible-runner)==' "$(dirname "$0")/python-tools.txt" | sort | tr '\n' ' ')"

dir="$UNICOP_VAR/awx"
src="$dir/src"
# AWX's four @devel git requirements (requirements/requirements_git.txt) get the stand-ins seen to work.
STANDINS=(
  "django-ansible-base[rest_filters,jwt_consumer,resource_registry,rbac]==$DAB_VERSION"  # wheel built from the archive
  "ansible-runner==2.4.0"
  "python3-saml==1.16.0"
  "certifi"
)
# The venv never changes once built, so it lives in the cache, shared by every clone on the machine
# (its scripts name their own path, so it cannot be copied into a clone); var/awx/venv if the cache
# is not writable.
venv_key=$(printf '%s\n' "$AWX_VERSION" "$AWX_SHA256" "$DAB_SHA256" "${STANDINS[@]}" | sha256sum | cut -c1-12)
if mkdir -p "$CACHE" 2>/dev/null && [ -w "$CACHE" ]; then venv="$CACHE/venv-py311-$venv_key"; else venv="$dir/venv"; fi
state="$dir/.state"
secrets="$dir/secrets"
settings="$dir/settings.py"
projects="$dir/projects"
targets="$dir/targets"
jobs="$dir/jobs"
awxlog="$UNICOP_LOG_DIR/awx"
ctrconf="$dir/containers.conf"
receptor_conf=/etc/receptor/receptor.conf
receptor_sock="$dir/run/receptor.sock"
receptor_bin="$CACHE/receptor-$RECEPTOR_VERSION/receptor"
url="http://$UNICOP_HOST:$PORT"
webhook_url="http://$UNICOP_HOST:${UNICOP_BRIDGE_PORT:-18080}/webhooks/awx"
PG_BIN=/usr/lib/postgresql/15/bin
mkdir -p "$dir" "$state"

# ---------------------------------------------------------------------------------------------
# helpers

# The environment every AWX process (and every podman it starts) runs with.
awx_env=(
  "PATH=$venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 TZ=UTC PYTHONUNBUFFERED=1
  "AWX_SETTINGS_FILE=$settings" "AWX_SETTINGS_DIR=$dir/conf.d" DJANGO_SETTINGS_MODULE=awx.settings.production
  "CONTAINERS_CONF=$ctrconf"
)
# A podman storage of the caller's choosing (containers-storage.conf(5)) reaches every podman AWX runs.
[ -n "${CONTAINERS_STORAGE_CONF:-}" ] && awx_env+=("CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF")
awx_run() { env -i "${awx_env[@]}" "$@"; }
awx_manage() { awx_run "$venv/bin/awx-manage" "$@"; }

as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
psql_admin() {
  PGOPTIONS="-c client_min_messages=warning" as_postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
    -h "$UNICOP_VAR/postgres/run" -p "$UNICOP_PG_PORT" -U postgres "$@"
}

# ---------------------------------------------------------------------------------------------
# provisioning steps

step_packages() {
  # Building AWX's requirements: python-ldap (ldap, sasl), xmlsec, uwsgi (gcc, python3-dev).
  apt_install libldap2-dev libsasl2-dev libxmlsec1-dev libxml2-dev pkg-config gcc python3.11-dev python3.11-venv \
    libpq-dev podman runc debootstrap
  command -v go >/dev/null || [ -x "$receptor_bin" ] || apt_install golang-go
}

step_source() {
  local want="$AWX_VERSION $AWX_SHA256 $DAB_SHA256"
  marked source "$want" && return 0
  # A clone outside the directory that holds shared/ finds the verified copies kept in the cache.
  [ -f "$THIRD_PARTY/awx-$AWX_VERSION.tar.gz" ] || [ ! -f "$CACHE/third-party/awx-$AWX_VERSION.tar.gz" ] || THIRD_PARTY="$CACHE/third-party"
  local a="$THIRD_PARTY/awx-$AWX_VERSION.tar.gz" d="$THIRD_PARTY/django-ansible-base-$DAB_VERSION.tar.gz"
  [ -f "$a" ] && [ -f "$d" ] || die "AWX source archives not found in $THIRD_PARTY (set UNICOP_THIRD_PARTY)"
  echo "$AWX_SHA256  $a" | sha256sum -c --quiet - >/dev/null 2>&1 || die "checksum mismatch: $a"
  echo "$DAB_SHA256  $d" | sha256sum -c --quiet - >/dev/null 2>&1 || die "checksum mismatch: $d"
  if [ "$THIRD_PARTY" != "$CACHE/third-party" ]; then
    mkdir -p "$CACHE/third-party" && cp "$a" "$d" "$CACHE/third-party/" || say "WARNING: could not keep the archives in $CACHE/third-party"
  fi
  say "unpacking AWX $AWX_VERSION into $src"
  rm -rf "$src"
  mkdir -p "$src"
  tar -C "$src" --strip-components=1 -xzf "$a"
  # No git metadata in the archive: AWX reads its version from this file first (awx/__init__.py).
  echo "$AWX_VERSION" >"$src/VERSION"
  mark source "$want"
}

third_party_file() { if [ -f "$THIRD_PARTY/$1" ]; then echo "$THIRD_PARTY/$1"; else echo "$CACHE/third-party/$1"; fi; }

# requirements/requirements.txt pins everything but AWX's four @devel git requirements
# (requirements/requirements_git.txt), which get the stand-ins seen to work.
write_requirements() {
  cat "$src/requirements/requirements.txt"
  # Built into the wheelhouse from the archive (step_venv), so it resolves like any other pin.
  printf '%s\n' "${STANDINS[@]}"
}

step_venv() {
  local reqs="$dir/requirements.txt" want log="$UNICOP_LOG_DIR/awx-install.log"
  write_requirements >"$reqs.new" && mv "$reqs.new" "$reqs"
  want="$venv $AWX_VERSION $(sha256sum "$reqs" | cut -c1-16)"
  local done_file="$venv/.unicop-complete"
  marked venv "$want" && [ -f "$done_file" ] && return 0
  # Another clone may be building the same venv: one builder at a time, the others reuse it.
  exec 8>"$venv.lock"
  flock -w 3600 8 || die "another clone holds $venv.lock"
  if [ "$(cat "$done_file" 2>/dev/null)" = "$want" ]; then
    exec 8>&-
    mark venv "$want"
    echo changed
    return 0
  fi
  local wheels="$CACHE/wheels-py311"
  mkdir -p "$wheels"
  rm -rf "$venv"
  /usr/bin/python3.11 -m venv "$venv" >"$log" 2>&1 || die "venv creation failed (see $log)"
  "$venv/bin/pip" install -q --disable-pip-version-check 'pip<25' setuptools wheel >>"$log" 2>&1 || die "pip upgrade failed (see $log)"
  local pip=("$venv/bin/pip" --disable-pip-version-check)
  # Warm: everything from the wheelhouse, no index. Cold: build the wheelhouse from PyPI first.
  if ! "${pip[@]}" install --no-index --find-links "$wheels" -r "$reqs" >>"$log" 2>&1; then
    say "building the wheelhouse $wheels from PyPI (cold: several minutes; log $log)"
    # The archive has no git metadata for setuptools-scm: its version is given.
    SETUPTOOLS_SCM_PRETEND_VERSION_FOR_DJANGO_ANSIBLE_BASE=$DAB_VERSION "${pip[@]}" wheel --no-deps -w "$wheels" \
      "$(third_party_file "django-ansible-base-$DAB_VERSION.tar.gz")" >>"$log" 2>&1 || die "building django-ansible-base failed (see $log)"
    "${pip[@]}" wheel --find-links "$wheels" -w "$wheels" -r "$reqs" >>"$log" 2>&1 || die "pip wheel failed (see $log)"
    "${pip[@]}" install --no-index --find-links "$wheels" -r "$reqs" >>"$log" 2>&1 || die "pip install failed (see $log)"
  fi
  # AWX itself (not editable: the unpacked tree is a build input, nothing edits it).
  "${pip[@]}" install --no-deps --no-build-isolation "$src" >>"$log" 2>&1 || die "pip install of AWX failed (see $log)"
  echo "$want" >"$done_file"
  exec 8>&-
  mark venv "$want"
  echo changed  # running processes hold the old venv's files: restart them
}

write_settings() {
  local pgpw; pgpw=$(secret pg_password)
  mkdir -p "$dir/conf.d" "$projects" "$targets" "$jobs" "$awxlog" "$dir/static" "$dir/job_status" "$dir/run"
  (umask 077; cat >"$settings.new" <<PY
# Written by scripts/stack.d/awx.sh on every \`up\` — edit the script, not this file.
# Read by awx/settings/production.py through AWX_SETTINGS_FILE; settings set here are read-only in the API.
import os
_secrets = '$secrets'
def _read(name):
    with open(os.path.join(_secrets, name)) as f:
        return f.read().strip()

SECRET_KEY = _read('secret_key')
ALLOWED_HOSTS = ['$UNICOP_HOST', 'localhost']
CLUSTER_HOST_ID = '$NODE'
DATABASES = {
    'default': {
        'ENGINE': 'awx.main.db.profiled_pg',
        'NAME': '$PG_DB', 'USER': '$PG_USER', 'PASSWORD': _read('pg_password'),
        'HOST': '$UNICOP_HOST', 'PORT': '$UNICOP_PG_PORT',
    }
}
BROKER_URL = 'redis://$UNICOP_HOST:$UNICOP_AWX_REDIS_PORT/$REDIS_DB_BROKER'
CACHES = {'default': {'BACKEND': 'awx.main.cache.AWXRedisCache', 'LOCATION': 'redis://$UNICOP_HOST:$UNICOP_AWX_REDIS_PORT/$REDIS_DB_CACHE'}}
CHANNEL_LAYERS = {
    'default': {'BACKEND': 'channels_redis.core.RedisChannelLayer', 'CONFIG': {'hosts': [BROKER_URL], 'capacity': 10000, 'group_expiry': 157784760}}
}
PROJECTS_ROOT = '$projects'
JOBOUTPUT_ROOT = '$dir/job_status'
STATIC_ROOT = '$dir/static'
LOG_ROOT = '$awxlog'
# awx/settings/defaults.py has already joined /var/log/tower/ into the file handlers: move them.
for _handler in LOGGING['handlers'].values():  # noqa: F821 (split_settings runs this in the settings' scope)
    if 'filename' in _handler:
        _handler['filename'] = os.path.join(LOG_ROOT, os.path.basename(_handler['filename']))
BASE_VENV_PATH = '$venv'
# Job private data dirs (mounted into the job container by ansible-runner).
AWX_ISOLATION_BASE_PATH = '$jobs'
# What the playbooks write, visible to the host at the same path (the tests read it).
AWX_ISOLATION_SHOW_PATHS = ['$targets:$targets:rw']
# No slirp4netns here; the jobs only talk to localhost (their inventory) anyway.
DEFAULT_CONTAINER_RUN_OPTIONS = ['--network', 'host']
# Links in notifications point here.
TOWER_URL_BASE = '$url'
INSIGHTS_TRACKING_STATE = False
AUTOMATION_ANALYTICS_GATHER_INTERVAL = 14400
# A job's latency (docs/decisions/0052-real-awx-job-latency.md). AWX sends a job's success or
# failure notification only once the callback receiver has saved its events, which it buffers for
# up to this long (default 1 s; a worker that flushed less than this before the job's last event
# waits for its next read, up to 1 s): UNICOP's run waits for that notification. 0: every event is
# written as it comes (a trivial job has ~54).
JOB_EVENT_BUFFER_SECONDS = 0
# Modules run through the interpreter's stdin instead of a temporary file per task (every job here
# uses ansible_connection=local, so nothing needs 'requiretty'): less CPU per module task.
AWX_TASK_ENV = {'ANSIBLE_PIPELINING': 'True'}
PY
  )
  if cmp -s "$settings.new" "$settings"; then rm -f "$settings.new"; else mv "$settings.new" "$settings"; echo changed; fi
}

step_database() {
  local pgpw; pgpw=$(secret pg_password)
  [ -d "$UNICOP_VAR/postgres/run" ] || die "the stack's PostgreSQL (var/postgres) is not set up: scripts/stack up postgres"
  psql_admin -d postgres <<SQL
\set pw '$pgpw'
SELECT 'CREATE ROLE $PG_USER' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') \gexec
ALTER ROLE $PG_USER WITH LOGIN PASSWORD :'pw';
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_USER TEMPLATE template0' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
SQL
}

pg_awx() {
  PGPASSWORD=$(secret pg_password) PGOPTIONS='-c client_min_messages=warning' "$PG_BIN/psql" -X -q -At \
    -v ON_ERROR_STOP=1 -h "$UNICOP_HOST" -p "$UNICOP_PG_PORT" -U "$PG_USER" -d "$PG_DB" "$@"
}

db_fingerprint() { pg_awx -c "SELECT count(*)::text || ':' || coalesce(max(id), 0)::text FROM django_migrations" 2>/dev/null || echo none; }

# The migrated + preloaded database: restored from the cache's dump (with the SECRET_KEY it was
# made with) or made here (migrate ~5 CPU-minutes) and then dumped into the cache.
step_migrate() {
  local log="$UNICOP_LOG_DIR/awx-migrate.log" dump="$CACHE/db-$AWX_VERSION"
  marked migrated "$AWX_VERSION $(db_fingerprint)" && return 0
  if [ "$(pg_awx -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = 0 ] && [ -s "$dump/awx.dump" ] && [ -s "$dump/secret_key" ]; then
    say "restoring the migrated AWX database from $dump"
    (umask 077; cp "$dump/secret_key" "$secrets/secret_key")
    # Without extensions: AWX needs none, and a dump made from a database created from template1
    # carries the stack's ltree, which only its owner may create or comment on.
    "$PG_BIN/pg_restore" -l "$dump/awx.dump" | grep -v -E ' (EXTENSION|COMMENT - EXTENSION) ' >"$dir/restore.list"
    PGPASSWORD=$(secret pg_password) "$PG_BIN/pg_restore" -h "$UNICOP_HOST" -p "$UNICOP_PG_PORT" -U "$PG_USER" -d "$PG_DB" \
      --no-owner --no-acl --exit-on-error -L "$dir/restore.list" "$dump/awx.dump" >"$log" 2>&1 || die "pg_restore failed (see $log)"
  else
    secret secret_key >/dev/null
    say "awx-manage migrate (a fresh database takes ~5 CPU-minutes; log $log)"
    awx_manage migrate --noinput >"$log" 2>&1 || die "awx-manage migrate failed (see $log)"
    set_admin_password >>"$log" 2>&1 || die "creating the admin user failed (see $log)"
    awx_manage create_preload_data >>"$log" 2>&1 || die "create_preload_data failed (see $log)"
    awx_manage register_default_execution_environments >>"$log" 2>&1 || die "register_default_execution_environments failed (see $log)"
    awx_manage provision_instance --hostname="$NODE" --node_type=hybrid >>"$log" 2>&1 || die "provision_instance failed (see $log)"
    awx_manage register_queue --queuename=controlplane --hostnames="$NODE" >>"$log" 2>&1 || die "register_queue controlplane failed (see $log)"
    awx_manage register_queue --queuename=default --hostnames="$NODE" >>"$log" 2>&1 || die "register_queue default failed (see $log)"
    say "saving the migrated database to $dump"
    mkdir -p "$dump"
    (umask 077
     PGPASSWORD=$(secret pg_password) "$PG_BIN/pg_dump" -h "$UNICOP_HOST" -p "$UNICOP_PG_PORT" -U "$PG_USER" -d "$PG_DB" \
       -Fc -f "$dump/awx.dump.tmp" && cp "$secrets/secret_key" "$dump/secret_key.tmp" &&
       mv "$dump/secret_key.tmp" "$dump/secret_key" && mv "$dump/awx.dump.tmp" "$dump/awx.dump") \
      || say "WARNING: could not save the database dump (the next fresh clone migrates again)"
  fi
  set_admin_password >>"$log" 2>&1 || die "setting the admin password failed (see $log)"
  mark migrated "$AWX_VERSION $(db_fingerprint)"
}

# The superuser `admin` with this clone's password (read from stdin, never on a command line).
set_admin_password() {
  secret admin_password | awx_manage shell -c '
import sys
from awx.main.models import User
password = sys.stdin.readline().strip()
user, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@unicop.invalid"})
user.is_superuser = True
user.is_staff = True
user.set_password(password)
user.save()
'
}

# The receptor binary, built once into the cache: needs neither the venv nor the database.
build_receptor() {
  [ -x "$receptor_bin" ] && return 0
  local log="$UNICOP_LOG_DIR/awx-receptor-build.log" mod
  say "building receptor $RECEPTOR_VERSION from the Go module proxy (~2.5 min; log $log)"
  mod=$(mktemp -d)
  ( cd "$mod" && go mod init unicop.invalid/receptor-build && go get "github.com/ansible/receptor/cmd/receptor-cl@v$RECEPTOR_VERSION" &&
    mkdir -p "$(dirname "$receptor_bin")" && go build -o "$receptor_bin.tmp" github.com/ansible/receptor/cmd/receptor-cl &&
    mv "$receptor_bin.tmp" "$receptor_bin" ) >"$log" 2>&1 || { rm -rf "$mod"; die "receptor build failed (see $log)"; }
  rm -rf "$mod"
}

step_receptor() {
  build_receptor
  mkdir -p /etc/receptor "$dir/run" "$dir/receptor-work"
  cat >"$receptor_conf.new" <<YAML
# Written by $UNICOP_REPO/scripts/stack.d/awx.sh (UNICOP's local AWX); AWX reads this fixed path.
- local-only:
- log-level: info
- node:
    id: $NODE
    datadir: $dir/receptor-work
- control-service:
    service: control
    filename: $receptor_sock
    permissions: '0660'
- work-command:
    worktype: local
    command: $venv/bin/ansible-runner
    params: worker
    allowruntimeparams: true
YAML
  if cmp -s "$receptor_conf.new" "$receptor_conf"; then rm -f "$receptor_conf.new"; else mv "$receptor_conf.new" "$receptor_conf"; echo changed; fi
}

step_podman() {
  cat >"$ctrconf.new" <<TOML
# Written by scripts/stack.d/awx.sh. crun fails on this machine's hybrid cgroups and the sandbox
# lacks CAP_SYS_RESOURCE for podman's default ulimits.
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
TOML
  if cmp -s "$ctrconf.new" "$ctrconf"; then rm -f "$ctrconf.new"; else mv "$ctrconf.new" "$ctrconf"; fi
}

ee_tag() { printf '%s %s %s\n' "$EE_SUITE" "$EE_DEBS" "$EE_PIP" | sha256sum | cut -c1-12; }
ee_image() { echo "localhost/unicop-awx-ee:$(ee_tag)"; }

debian_mirror() {
  if [ -n "${UNICOP_DEBIAN_MIRROR:-}" ]; then echo "$UNICOP_DEBIAN_MIRROR"; return; fi
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | sed -e 's/#.*//' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n 1 | tr -d ' ' || true)
  m=${m%/}
  echo "${m:-http://deb.debian.org/debian}"
}

# The execution environment image: present in podman, else loaded from the cache, else built
# (debootstrap + pip, ~3 min) and saved into the cache.
step_ee() {
  local image tarball log="$UNICOP_LOG_DIR/awx-ee-build.log"
  image=$(ee_image); tarball="$CACHE/ee-$(ee_tag).tar"
  awx_run podman image exists "$image" && return 0
  if [ -s "$tarball" ]; then
    say "loading the execution environment $image from $tarball"
    awx_run podman load -q -i "$tarball" >"$log" 2>&1 || die "podman load failed (see $log)"
    awx_run podman image exists "$image" && return 0
  fi
  local root; root=$(mktemp -d "$dir/ee-root.XXXXXX")
  say "building the execution environment $image (debootstrap $EE_SUITE + pip $EE_PIP; log $log)"
  # shellcheck disable=SC2064
  # Cleans up however the build ends. A RETURN trap outlives its function (it fired again when the
  # caller returned, and `umount -l` of the unmounted /proc then ended the script with 32 under
  # set -e): tolerate that and clear it.
  trap "umount -l '$root/proc' 2>/dev/null || true; rm -rf --one-file-system '$root'; trap - RETURN" RETURN
  debootstrap --variant=minbase --include="$EE_DEBS" "$EE_SUITE" "$root" "$(debian_mirror)" >"$log" 2>&1 \
    || die "debootstrap failed (see $log)"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  [ -s /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/unicop-host-ca.crt"
  mount -t proc proc "$root/proc"
  # shellcheck disable=SC2086
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/unicop-host-ca.crt chroot "$root" sh -c "python3 -m venv /opt/ee && /opt/ee/bin/pip install -q $EE_PIP" \
    >>"$log" 2>&1 || die "pip install in the execution environment failed (see $log)"
  umount "$root/proc"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/root/.cache "$root/etc/unicop-host-ca.crt"
  : >"$root/etc/resolv.conf"
  mkdir -p "$root/runner"
  tar -C "$root" -c . | awx_run podman import -q \
    --change 'ENV PATH=/opt/ee/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'WORKDIR /runner' --change 'CMD ["/bin/bash"]' - "$image" >>"$log" 2>&1 \
    || die "podman import failed (see $log)"
  mkdir -p "$CACHE"
  awx_run podman save -q -o "$tarball.tmp" "$image" >>"$log" 2>&1 && mv "$tarball.tmp" "$tarball" \
    || say "WARNING: could not save $image to $tarball"
}

step_project() {
  mkdir -p "$projects"
  local link="$projects/unicop-playbooks"
  [ "$(readlink "$link" 2>/dev/null)" = "$UNICOP_REPO/awx-playbooks" ] || ln -sfn "$UNICOP_REPO/awx-playbooks" "$link"
}

# ---------------------------------------------------------------------------------------------
# processes

daemons=(awx-uwsgi awx-dispatcher awx-callback awx-receptor)

stop_daemons() {
  local d pids=()
  for d in "${daemons[@]}"; do stop_daemon "$d" 30 & pids+=($!); done
  wait "${pids[@]}"
}

start_daemons() {
  if ! daemon_alive awx-receptor; then
    rm -f "$receptor_sock"
    start_daemon awx-receptor env -i "${awx_env[@]}" "$receptor_bin" --config "$receptor_conf" 9>&-
  fi
  if ! daemon_alive awx-uwsgi; then
    port_open "$PORT" && die "$UNICOP_HOST:$PORT is taken by another process (the AWX double? another checkout's stack?)"
    # --http-keepalive: without it the HTTP router closes every connection after one answer yet
    # says nothing (no Connection: close), and a client reusing the socket (Node's fetch) loses
    # its next request (seen: a POST approve failed with "other side closed").
    start_daemon awx-uwsgi env -i "${awx_env[@]}" "$venv/bin/uwsgi" --http "$UNICOP_HOST:$PORT" \
      --module awx.wsgi:application --master --processes "$WEB_PROCESSES" --die-on-term --vacuum \
      --http-keepalive --http-auto-chunked --buffer-size 32768 --harakiri 120 --max-requests 1000 --disable-logging --static-map "/static=$dir/static" 9>&-
  fi
  daemon_alive awx-dispatcher || start_daemon awx-dispatcher env -i "${awx_env[@]}" "$venv/bin/awx-manage" run_dispatcher 9>&-
  daemon_alive awx-callback || start_daemon awx-callback env -i "${awx_env[@]}" "$venv/bin/awx-manage" run_callback_receiver 9>&-
}

# api_get PATH — GET as admin (the password travels in a header file on stdin, never on a command line).
api_get() {
  printf 'Authorization: Basic %s\n' "$(printf 'admin:%s' "$(cat "$secrets/admin_password" 2>/dev/null)" | base64 -w0)" |
    curl -sS -m 10 -f -H @- -H 'Accept: application/json' "$url$1"
}

# Healthy: /api/v2/ping/ answers and lists our instance with capacity > 0 (the dispatcher's
# heartbeat sets it), and receptor's control socket exists.
healthy() {
  local body
  body=$(curl -sS -m 5 -f "$url/api/v2/ping/" 2>/dev/null) || return 1
  [ -S "$receptor_sock" ] || return 1
  python3 -c '
import json, sys
p = json.loads(sys.argv[1])
ok = any(i.get("node") == sys.argv[2] and (i.get("capacity") or 0) > 0 for i in p.get("instances", []))
sys.exit(0 if ok else 1)' "$body" "$NODE"
}

wait_ready() {
  local i d
  for ((i = 0; i < 300; i++)); do
    healthy && return 0
    for d in "${daemons[@]}"; do daemon_alive "$d" || die "$d exited (see $UNICOP_LOG_DIR/$d.log)"; done
    sleep 0.5
  done
  die "AWX did not report a healthy instance with capacity within 150s (see $UNICOP_LOG_DIR/awx-*.log, $awxlog/)"
}

# ---------------------------------------------------------------------------------------------

up() {
  command -v curl >/dev/null || apt_install curl
  port_open "$UNICOP_PG_PORT" || die "PostgreSQL is not up on $UNICOP_HOST:$UNICOP_PG_PORT: scripts/stack up postgres"
  port_open "$UNICOP_AWX_REDIS_PORT" || die "AWX's Redis is not up on $UNICOP_HOST:$UNICOP_AWX_REDIS_PORT: scripts/stack up redis"
  # Before anything is written: /etc/receptor/receptor.conf is one per machine, and another
  # clone's running AWX reads it for every job.
  if ! daemon_alive awx-uwsgi && port_open "$PORT"; then
    die "$UNICOP_HOST:$PORT is taken by another process (the AWX double? another checkout's stack? stop it with its scripts/stack down)"
  fi
  exec 9>"$dir/.lock"
  flock -w 3600 9 || die "another 'awx.sh up' holds $dir/.lock"
  timed "packages" step_packages
  timed "source" step_source
  step_podman
  # The receptor binary and the execution environment need neither the venv nor the database: on a
  # cold machine they are built beside pip and migrate (network-bound, and migrate uses one core).
  local bg_receptor bg_ee
  ( timed "receptor build" build_receptor ) &
  bg_receptor=$!
  ( timed "execution environment" step_ee ) &
  bg_ee=$!
  # shellcheck disable=SC2064
  trap "kill $bg_receptor $bg_ee 2>/dev/null || true" EXIT
  local changed=""
  timed "venv (pip)" eval 'changed+=$(step_venv)'
  changed+=$(write_settings)
  timed "database role" step_database
  timed "database (migrate or restore)" step_migrate
  wait "$bg_receptor" || die "receptor build failed (see $UNICOP_LOG_DIR/awx-receptor-build.log)"
  wait "$bg_ee" || die "execution environment failed (see $UNICOP_LOG_DIR/awx-ee-build.log)"
  trap - EXIT
  changed+=$(step_receptor)
  step_project
  if [ -n "$changed" ] && { daemon_alive awx-uwsgi || daemon_alive awx-dispatcher; }; then
    say "configuration changed: restarting AWX"
    stop_daemons
  fi
  timed "start + wait for the API and capacity" eval 'start_daemons; wait_ready'
  env_set UNICOP_AWX_REAL_URL "$url"
  env_set UNICOP_AWX_EE_IMAGE "$(ee_image)"
  env_set UNICOP_AWX_TARGET_DIR "$targets"
  env_set UNICOP_AWX_ADMIN_PASSWORD_FILE "$secrets/admin_password"
  env_set UNICOP_AWX_NOTIFY_URL "$webhook_url"
  timed "bootstrap (objects as code)" bootstrap
  # A venv inside the clone from before the venv moved to the cache (the processes now use the other).
  [ "$venv" = "$dir/venv" ] || [ ! -d "$dir/venv" ] || rm -rf "$dir/venv"
  exec 9>&-
  status
}

bootstrap_inputs() {
  cat "$UNICOP_REPO/core/awx/bootstrap.ts" "$UNICOP_REPO/scripts/awx-bootstrap.ts"
  printf '%s\n' "$(ee_image)" "$targets" "$webhook_url" "$(cat "$state/migrated" 2>/dev/null)"
}

# The bootstrap's result still holds: the token authenticates and every template of the map still
# exists under its name (a `npx tsx` start alone costs ~10 s on a loaded machine).
bootstrap_intact() {
  [ -s "$dir/facts.env" ] && [ -s "$dir/templates.json" ] && [ -s "$secrets/api_token" ] || return 1
  marked bootstrap "$(bootstrap_inputs | sha256sum | cut -c1-16)" || return 1
  local ids body
  ids=$(python3 -c 'import json,sys; print(",".join(str(t["id"]) for t in json.load(open(sys.argv[1])).values()))' "$dir/templates.json") || return 1
  body=$(printf 'Authorization: Bearer %s\n' "$(cat "$secrets/api_token")" |
    curl -sS -m 10 -f -H @- "$url/api/v2/unified_job_templates/?id__in=$ids&page_size=50" 2>/dev/null) || return 1
  python3 -c '
import json, sys
want = {name: t["id"] for name, t in json.load(open(sys.argv[1])).items()}
have = {r["name"]: r["id"] for r in json.loads(sys.argv[2])["results"]}
sys.exit(0 if all(have.get(n) == i for n, i in want.items()) else 1)' "$dir/templates.json" "$body"
}

bootstrap() {
  local log="$UNICOP_LOG_DIR/awx-bootstrap.log"
  secret webhook_secret >/dev/null
  if ! bootstrap_intact; then
    [ -x "$UNICOP_REPO/node_modules/.bin/tsx" ] || die "no node_modules/.bin/tsx: run scripts/npm-deps first"
    (cd "$UNICOP_REPO" && env UNICOP_AWX_BOOTSTRAP_URL="$url" UNICOP_AWX_ADMIN_PASSWORD_FILE="$secrets/admin_password" \
       UNICOP_AWX_TOKEN_FILE="$secrets/api_token" UNICOP_AWX_WEBHOOK_SECRET_FILE="$secrets/webhook_secret" \
       UNICOP_AWX_WEBHOOK_URL="$webhook_url" \
       UNICOP_AWX_EE_IMAGE="$(ee_image)" UNICOP_AWX_TARGET_DIR="$targets" UNICOP_AWX_PROJECT_PATH=unicop-playbooks \
       UNICOP_AWX_FACTS_FILE="$dir/facts.env" UNICOP_AWX_TEMPLATES_FILE="$dir/templates.json" \
       "$UNICOP_REPO/node_modules/.bin/tsx" scripts/awx-bootstrap.ts) >"$log" 2>&1 || die "the AWX bootstrap failed (see $log)"
    say "$(tail -n 1 "$log")"
    mark bootstrap "$(bootstrap_inputs | sha256sum | cut -c1-16)"
  fi
  local k v
  while IFS='=' read -r k v; do [ -n "$k" ] && env_set "$k" "$v"; done <"$dir/facts.env"
}

status() {
  local d body
  for d in "${daemons[@]}"; do daemon_alive "$d" || { echo "awx: down ($d not running)"; return 1; }; done
  body=$(curl -sS -m 5 -f "$url/api/v2/ping/" 2>/dev/null) || { echo "awx: processes running but GET $url/api/v2/ping/ failed"; return 1; }
  python3 -c '
import json, sys
p = json.loads(sys.argv[1])
inst = [i for i in p.get("instances", []) if i.get("node") == sys.argv[3]]
cap = inst[0].get("capacity") if inst else None
print("awx: up on %s (AWX %s, instance %s capacity %s)" % (sys.argv[2], p.get("version"), sys.argv[3], cap))
sys.exit(0 if cap else 1)' "$body" "$url" "$NODE"
}

down() {
  stop_daemons
  # Job containers outlive their runner when it is killed (conmon is re-parented).
  local ids
  ids=$(awx_run podman ps -q --filter "ancestor=$(ee_image)" 2>/dev/null || true)
  [ -z "$ids" ] || awx_run podman rm -f -t 5 $ids >/dev/null 2>&1 || true
}

logs() {
  local f
  for f in "${daemons[@]}"; do
    echo "==> $UNICOP_LOG_DIR/$f.log <=="
    tail -n "${LINES:-30}" "$UNICOP_LOG_DIR/$f.log" 2>/dev/null || true
  done
  for f in dispatcher callback_receiver task_system tower; do
    echo "==> $awxlog/$f.log <=="
    tail -n "${LINES:-30}" "$awxlog/$f.log" 2>/dev/null || true
  done
}

drop_db() {
  daemon_alive awx-uwsgi && die "stop AWX first: $0 down"
  psql_admin -d postgres -c "DROP DATABASE IF EXISTS $PG_DB"
  rm -f "$state/migrated"
}

case "${1:-status}" in
  up|down|status|logs) "${1:-status}" ;;
  drop-db) drop_db ;;
  ee) step_packages; step_podman; step_ee; ee_image ;;
  *) echo "usage: $0 up|down|status|logs|drop-db|ee" >&2; exit 2 ;;
esac
