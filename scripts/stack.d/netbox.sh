#!/usr/bin/env bash
# NetBox 4.7 from PyPI, with the UNICOP plugin, on 127.0.0.1:$UNICOP_NETBOX_PORT.
#
# NetBox needs Python >= 3.12 and the machine has 3.11, so NetBox runs inside a Debian trixie root
# (debootstrap --variant=minbase) under $UNICOP_VAR/netbox/rootfs, entered with chroot; it shares the
# host's network, so it reaches PostgreSQL and Redis of the stack on 127.0.0.1. Inside the root:
#   /opt/netbox          NETBOX_ROOT (conf/configuration.py, contrib/gunicorn.py, static/, media/)
#   /opt/netbox/venv     the virtualenv: netbox==$UNICOP_NETBOX_VERSION, the plugin (editable)
#   /unicop              bind mount of the repository ($UNICOP_REPO); the plugin is /unicop/netbox-plugin
#   /proc                mounted (Python and gunicorn need it); /dev nodes come from debootstrap
# Processes: gunicorn (NetBox's contrib/gunicorn.py, bound to 127.0.0.1, $UNICOP_NETBOX_WORKERS
# workers), `netbox rqworker high default low` (delivers webhooks) and `netbox unicop_hashes` (the
# plugin's background recompute of stale current hashes, docs/decisions/0043). Static files are collected
# into /opt/netbox/static but not served (gunicorn does not serve /static/): the API is complete,
# the UI renders unstyled.
#
#   up       provision what is missing (each step leaves a marker in $rootfs/.unicop only once it
#            succeeded, so an interrupted step is redone), start, wait for the API, ensure the token
#   down     stop gunicorn and the RQ worker, unmount /proc and /unicop (so removing var/ is safe)
#   status   one line: API answers with the token, NetBox version, plugin, RQ worker alive
#   logs     tail of the gunicorn and RQ worker logs
#   exec [VAR=value...] CMD...   run CMD inside the root with NetBox's environment (mounts first)
#
# Cache ($UNICOP_CACHE/netbox, outside the clone): the provisioned root (debootstrap + venv) as a
# tarball keyed by its packages and NetBox's version, and a dump of a freshly upgraded database
# keyed by NetBox's version. A fresh clone on the same machine restores both (seconds) instead of
# debootstrap + pip + `netbox upgrade` (~8 min); `netbox migrate` then applies any newer plugin
# migration. Delete the folder to provision from nothing.
#
# Secrets (generated once, kept in $UNICOP_VAR/netbox/secrets, mode 600, never printed):
# SECRET_KEY, the API token pepper, the `admin` password, the API token (also in stack.env).
# To start from scratch: `scripts/stack.d/netbox.sh down && rm -rf var/netbox` (after `down`
# nothing is mounted inside var/netbox/rootfs; never remove it while the stack is up).
STACK_SERVICE=netbox
source "$(dirname "$0")/common.sh"

NETBOX_SPEC="${UNICOP_NETBOX_VERSION:-4.7.*}"
NETBOX_WORKERS="${UNICOP_NETBOX_WORKERS:-3}"
# RQ workers delivering the webhooks (docs/decisions/0063): daemons netbox-rqworker, netbox-rqworker-2, …
# Two by default, so one that dies or restarts does not stop delivery (on two cores a third adds nothing).
NETBOX_RQWORKERS="${UNICOP_NETBOX_RQWORKERS:-2}"
# NetBox's own Redis (redis.sh: redis-netbox on $UNICOP_NETBOX_REDIS_PORT), apart from UNICOP's, as in
# production: losing UNICOP's Redis does not drop NetBox's queued webhooks or fail its writes.
REDIS_DB_TASKS="${UNICOP_NETBOX_REDIS_DB_TASKS:-0}"
REDIS_DB_CACHING="${UNICOP_NETBOX_REDIS_DB_CACHING:-1}"
ROOT_PACKAGES=python3.13,python3.13-venv,libpq5,ca-certificates

dir="$UNICOP_VAR/netbox"
rootfs="$dir/rootfs"
state="$rootfs/.unicop"          # step markers live inside the root: removing the root resets them
secrets="$dir/secrets"
NB_ROOT=/opt/netbox
NB_VENV=/opt/netbox/venv
HOST_CA=/etc/unicop-host-ca.crt  # inside the root: the host's CA bundle, for pip
url="http://$UNICOP_HOST:$UNICOP_NETBOX_PORT"
CHROOT=$(command -v chroot || echo /usr/sbin/chroot)
cache="$UNICOP_CACHE/netbox"
mkdir -p "$dir"

# ---------------------------------------------------------------------------------------------
# helpers

root_env=(
  "PATH=$NB_VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
  HOME=/root LANG=C.UTF-8 LC_ALL=C.UTF-8 TZ=UTC
  "NETBOX_ROOT=$NB_ROOT" PYTHONUNBUFFERED=1
  PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore
)
for v in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST http_proxy https_proxy HTTP_PROXY HTTPS_PROXY no_proxy NO_PROXY; do
  [ -n "${!v:-}" ] && root_env+=("$v=${!v}")
done

# in_root [VAR=value...] CMD... — runs CMD in the root with a clean environment, in NETBOX_ROOT
# (never in /: /unicop would then shadow the plugin package `unicop` as a namespace package).
in_root() {
  local extra=() cwd=/tmp
  [ -s "$rootfs$HOST_CA" ] && extra+=("PIP_CERT=$HOST_CA")
  [ -d "$rootfs$NB_ROOT" ] && cwd=$NB_ROOT
  env -i "${root_env[@]}" "${extra[@]}" "$CHROOT" "$rootfs" /usr/bin/env -C "$cwd" "$@"
}

debian_mirror() {
  if [ -n "${UNICOP_DEBIAN_MIRROR:-}" ]; then echo "$UNICOP_DEBIAN_MIRROR"; return; fi
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
      | sed -e 's/#.*//' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n 1 | tr -d ' ' || true)
  m=${m%/}
  echo "${m:-http://deb.debian.org/debian}"
}

# Mount points below the root, deepest first.
root_mounts() { findmnt -rn -o TARGET | awk -v p="$rootfs/" 'index($0, p) == 1' | sort -r; }

# unmount_all [lazy] — unmounts everything below the root; with "lazy", busy mounts are detached.
unmount_all() {
  local m rc=0
  for m in $(root_mounts); do
    umount "$m" 2>/dev/null && continue
    if [ "${1:-}" = lazy ]; then umount -l "$m" || rc=1
    else say "WARNING: $m is busy (a process still uses it); left mounted"; rc=1
    fi
  done
  return $rc
}

ensure_mounts() {
  [ -d "$rootfs/proc" ] || die "no root at $rootfs: run '$0 up' first"
  mountpoint -q "$rootfs/proc" || mount -t proc proc "$rootfs/proc"
  mkdir -p "$rootfs/unicop"
  if mountpoint -q "$rootfs/unicop"; then
    # Same directory (device:inode) as the repository? Otherwise the repo moved (e.g. a CI clone).
    [ "$(stat -c %d:%i "$UNICOP_REPO")" = "$(stat -c %d:%i "$rootfs/unicop")" ] && return 0
    say "re-binding /unicop to $UNICOP_REPO (the repository moved)"
    rebound=1
    umount "$rootfs/unicop" 2>/dev/null || { stop_daemons; umount "$rootfs/unicop"; } \
      || die "$rootfs/unicop is busy (a process in the root uses it, e.g. scripts/test-plugin); stop it and retry"
  fi
  mount --bind "$UNICOP_REPO" "$rootfs/unicop"
}
rebound=0

# api_get PATH — GET with the stack token (read from the secrets file; never on a command line).
api_get() {
  printf 'Authorization: Bearer %s\n' "$(cat "$secrets/api_token" 2>/dev/null)" |
    curl -sS -m 10 -f -H @- -H 'Accept: application/json' "$url$1"
}

# ---------------------------------------------------------------------------------------------
# provisioning steps (each one is skipped when its marker says it is done)

root_cache_file() {
  printf '%s/rootfs-%s.tar' "$cache" "$(printf 'trixie minbase %s netbox %s' "$ROOT_PACKAGES" "$NETBOX_SPEC" | sha256sum | cut -c1-16)"
}

# The root with its venv, from the cache, when this clone has none yet.
step_restore_root() {
  local want="trixie minbase $ROOT_PACKAGES" f; f=$(root_cache_file)
  marked rootfs "$want" && return 0
  [ -s "$f" ] || return 0
  [ -e "$rootfs" ] && { unmount_all lazy || return 0; rm -rf --one-file-system "$rootfs"; }
  say "restoring the root and venv from $f"
  mkdir -p "$rootfs"
  tar -C "$rootfs" -xf "$f" || { say "WARNING: the cached root did not unpack; provisioning from nothing"; rm -rf --one-file-system "$rootfs"; }
}

# Saves the root + venv (no mounts, no per-clone markers) once pip has succeeded.
save_root_cache() {
  local f; f=$(root_cache_file)
  [ -s "$f" ] && return 0
  mkdir -p "$cache"
  say "saving the root and venv to $f"
  tar -C "$rootfs" --exclude=./proc/* --exclude=./unicop/* --exclude=./.unicop/plugin \
    --exclude=./.unicop/migrated --exclude=.$NB_ROOT/conf/configuration.py -cf "$f.tmp" . \
    && mv "$f.tmp" "$f" || { rm -f "$f.tmp"; say "WARNING: could not save the root cache"; }
}

step_rootfs() {
  local want="trixie minbase $ROOT_PACKAGES"
  marked rootfs "$want" && return 0
  apt_install debootstrap
  if [ -e "$rootfs" ]; then
    stop_daemons
    unmount_all lazy || die "could not unmount everything below $rootfs; unmount it by hand, then rm -rf $rootfs"
    say "removing incomplete root $rootfs"
    rm -rf --one-file-system "$rootfs"
  fi
  local mirror; mirror=$(debian_mirror)
  say "debootstrap trixie into $rootfs (mirror $mirror; log $UNICOP_LOG_DIR/netbox-debootstrap.log)"
  if ! debootstrap --variant=minbase --include="$ROOT_PACKAGES" trixie "$rootfs" "$mirror" \
      >"$UNICOP_LOG_DIR/netbox-debootstrap.log" 2>&1; then
    unmount_all lazy || true
    die "debootstrap failed (see $UNICOP_LOG_DIR/netbox-debootstrap.log); the next 'up' starts the root afresh"
  fi
  unmount_all lazy || true
  rm -f "$rootfs"/var/cache/apt/archives/*.deb
  mark rootfs "$want"
}

step_root_files() {
  # DNS and the host's trust store (the host may sit behind a TLS-intercepting proxy whose CA
  # only the host trusts); both cheap to refresh on every `up`.
  cmp -s /etc/resolv.conf "$rootfs/etc/resolv.conf" 2>/dev/null || cp -L /etc/resolv.conf "$rootfs/etc/resolv.conf" 2>/dev/null || true
  if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    cmp -s /etc/ssl/certs/ca-certificates.crt "$rootfs$HOST_CA" || cp /etc/ssl/certs/ca-certificates.crt "$rootfs$HOST_CA"
  fi
}

step_venv() {
  marked venv "$NETBOX_SPEC" && return 0
  local log="$UNICOP_LOG_DIR/netbox-install.log"
  say "creating the venv and installing netbox==$NETBOX_SPEC (log $log)"
  rm -rf "$rootfs$NB_VENV" "$state/plugin"
  in_root python3.13 -m venv "$NB_VENV" >"$log" 2>&1 || die "venv creation failed (see $log)"
  in_root pip install --no-deps "netbox==$NETBOX_SPEC" >>"$log" 2>&1 || die "pip install netbox failed (see $log)"
  # NetBox pins psycopg[c,pool]: psycopg's C extension, compiled at install time (gcc, libpq-dev
  # and python3.13-dev in the root: minutes). The same psycopg version as a binary wheel
  # (psycopg[binary,pool]: bundled libpq, same API) installs in seconds; every other pin is kept.
  # deploy/netbox/netbox_requirements.py: the same rewrite the netbox-unicop image uses.
  in_root python /unicop/deploy/netbox/netbox_requirements.py >"$rootfs/tmp/netbox-requirements.txt" 2>>"$log" \
    || die "could not read netbox's requirements (see $log)"
  in_root pip install -r /tmp/netbox-requirements.txt setuptools >>"$log" 2>&1 || die "pip install of netbox's requirements failed (see $log)"
  mark venv "$NETBOX_SPEC"
  save_root_cache
}

step_plugin() {
  local want
  want="$NETBOX_SPEC $(sha256sum "$UNICOP_REPO/netbox-plugin/pyproject.toml" | cut -c1-16)"
  marked plugin "$want" && return 0
  local log="$UNICOP_LOG_DIR/netbox-install.log"
  say "installing the plugin (editable, /unicop/netbox-plugin)"
  in_root pip install --no-deps --no-build-isolation -e /unicop/netbox-plugin >>"$log" 2>&1 \
    || die "pip install -e /unicop/netbox-plugin failed (see $log)"
  mark plugin "$want"
}

# awx_template_id NAME DOUBLE_ID — the id a root kind's AWX template has. UNICOP_ROOT_KINDS_AWX:
#   auto (default)  real AWX's id of the template NAME when the awx service has recorded them
#                   (UNICOP_AWX_TEMPLATE_IDS, written by awx.sh's bootstrap: AWX chooses the ids;
#                   `scripts/stack up` starts awx before netbox), else DOUBLE_ID
#   real            real AWX's id, or fail;   double  DOUBLE_ID (the AWX double's catalogue)
awx_template_id() {
  local mode="${UNICOP_ROOT_KINDS_AWX:-auto}" ids; ids=$(env_get UNICOP_AWX_TEMPLATE_IDS)
  case "$mode" in
    double) echo "$2"; return 0 ;;
    auto) [ -n "$ids" ] || { echo "$2"; return 0; } ;;
    real) ;;
    *) die "UNICOP_ROOT_KINDS_AWX must be auto, real or double, not '$mode'" ;;
  esac
  python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]]["id"])' "$ids" "$1" 2>/dev/null \
    || die "NetBox's root kinds want real AWX's template $1 but var/stack.env has none: scripts/stack up awx first"
}

# Writes conf/configuration.py when its content changed; prints "changed" if it did.
step_config() {
  [ -f "$rootfs$NB_ROOT/contrib/gunicorn.py" ] || in_root netbox setup --target "$NB_ROOT" >>"$UNICOP_LOG_DIR/netbox-install.log" 2>&1 \
    || die "netbox setup failed (see $UNICOP_LOG_DIR/netbox-install.log)"
  local pgpw; pgpw=$(env_get UNICOP_PG_PASSWORD)
  [ -n "$pgpw" ] || die "no UNICOP_PG_PASSWORD in $UNICOP_VAR/stack.env: run scripts/stack.d/postgres.sh up first"
  local t  # checked here: a failure inside the heredoc below would go unnoticed
  for t in unicop-prefix unicop-site unicop-site-with-approval; do awx_template_id "$t" 0 >/dev/null; done
  local conf="$rootfs$NB_ROOT/conf/configuration.py"
  (umask 077; cat >"$conf.new" <<PY
# Written by scripts/stack.d/netbox.sh on every \`up\` — edit the script, not this file.
ALLOWED_HOSTS = ['$UNICOP_HOST', 'localhost']

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': '$(env_get UNICOP_PG_DATABASE)',
        'USER': '$(env_get UNICOP_PG_USER)',
        'PASSWORD': '$pgpw',
        'HOST': '$UNICOP_HOST',
        'PORT': '$UNICOP_PG_PORT',
        'CONN_MAX_AGE': 300,
    }
}

REDIS = {
    'tasks': {
        'HOST': '$UNICOP_HOST', 'PORT': $UNICOP_NETBOX_REDIS_PORT, 'USERNAME': '', 'PASSWORD': '',
        'DATABASE': $REDIS_DB_TASKS, 'SSL': False,
    },
    'caching': {
        'HOST': '$UNICOP_HOST', 'PORT': $UNICOP_NETBOX_REDIS_PORT, 'USERNAME': '', 'PASSWORD': '',
        'DATABASE': $REDIS_DB_CACHING, 'SSL': False,
    },
}

SECRET_KEY = '$(secret secret_key)'
API_TOKEN_PEPPERS = {1: '$(secret api_token_pepper)'}

TIME_ZONE = 'UTC'

# Webhook retries (docs/decisions/0036): NetBox sends a webhook once unless RQ_RETRY_MAX is set, so an
# edit made while the bridge restarts, or answered 503 while Kafka is away, would wait for the sweep.
# 10 retries, the n-th RQ_RETRY_INTERVAL[n] seconds after the failure before it (one value per retry:
# RQ pads a shorter list at the front with its first value): ~6 minutes of outage covered, longer
# than the default sweep interval (300 s), which catches what is left.
RQ_RETRY_MAX = 10
RQ_RETRY_INTERVAL = [1, 2, 5, 10, 20, 30, 60, 60, 60, 120]

PLUGINS = ['unicop']
# The dev/test stack's root kinds (docs/decisions/0020). AWX template ids: real AWX's ids of the
# catalogue's template names once the awx service is up (the default stack), else the AWX double's
# (test/awx-double/templates.example.yaml); see awx_template_id and docs/decisions/0024.
PLUGINS_CONFIG = {
    'unicop': {
        'root_kinds': {
            'prefix': {'awx_template': {'type': 'job', 'id': $(awx_template_id unicop-prefix 7)}},
            'site': {'awx_template': {'type': 'job', 'id': $(awx_template_id unicop-site 8)}},
            'tenant': {
                'anchor': 'tenancy.tenant',
                'members': [],
                'awx_template': {'type': 'workflow', 'id': $(awx_template_id unicop-site-with-approval 9)},
                'policy': {'approval_required': True},
            },
            'location': {
                'anchor': 'dcim.location',
                'members': [],
                'awx_template': {'type': 'job', 'id': $(awx_template_id unicop-site 8)},
                'policy': {
                    'change_window': [{'start': '02:00', 'end': '03:00', 'timezone': 'UTC'}],
                    'run_timeout_seconds': 30,
                },
            },
            # Drift remediated (docs/decisions/0054): a check run that finds drift is followed by an
            # apply run (test/workers/drift.test.ts).
            'region': {
                'anchor': 'dcim.region',
                'members': [],
                'awx_template': {'type': 'job', 'id': $(awx_template_id unicop-site 8)},
                'policy': {'drift_mode': 'remediate'},
            },
            # The validation gate (docs/decisions/0060): each tunnel of a tunnel group root is named in
            # lower case, or its runs end failed/invalid_snapshot before launch (test/workers/gate.test.ts).
            # Object types no other kind covers (and outside test/fuzz's list).
            'tunnel-group': {
                'anchor': 'vpn.tunnelgroup',
                'members': [{'object_type': 'vpn.tunnel', 'relation': 'fk', 'field': 'group'}],
                'awx_template': {'type': 'job', 'id': $(awx_template_id unicop-site 8)},
                'policy': {
                    'schema': {
                        'type': 'object',
                        'required': ['root', 'members'],
                        'properties': {
                            'members': {
                                'type': 'array',
                                'items': {
                                    'type': 'object',
                                    'required': ['name'],
                                    'properties': {'name': {'type': 'string', 'pattern': '^[a-z][a-z0-9-]*\$'}},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
PY
  )
  if cmp -s "$conf.new" "$conf"; then rm -f "$conf.new"; else mv "$conf.new" "$conf"; echo changed; fi
}

# psql as the netbox role, from the host (postgresql-client comes with the server package).
pg_q() {
  PGPASSWORD=$(env_get UNICOP_PG_PASSWORD) PGOPTIONS='-c client_min_messages=warning' psql -X -q -At -v ON_ERROR_STOP=1 -h "$UNICOP_HOST" \
    -p "$UNICOP_PG_PORT" -U "$(env_get UNICOP_PG_USER)" "$@"
}

# What the database schema depends on: NetBox's version, the plugin's migration files, and which
# migrations the database has recorded (so a recreated database is noticed).
schema_fingerprint() {
  local v db
  v=$(cd "$rootfs$NB_VENV"/lib/python3*/site-packages && ls -d netbox-*.dist-info 2>/dev/null | head -n 1)
  db=$(pg_q -d "$(env_get UNICOP_PG_DATABASE)" \
       -c "SELECT count(*)::text || ':' || coalesce(max(id), 0)::text FROM django_migrations" 2>/dev/null || echo none)
  printf '%s plugin-migrations:%s db:%s\n' "$v" \
    "$(find "$UNICOP_REPO/netbox-plugin" -path '*/migrations/*.py' -type f -print0 | sort -z | xargs -0r cat | sha256sum | cut -c1-16)" "$db"
}

# Applies migrations (and the rest of `netbox upgrade`) when the database is behind the code.
# Fast path: the fingerprint recorded after the last successful check/upgrade still matches
# (`netbox migrate --check` alone costs ~9 s of Django start-up).
db_dump_file() {
  printf '%s/db-%s.dump' "$cache" "$(cd "$rootfs$NB_VENV"/lib/python3*/site-packages && ls -d netbox-*.dist-info 2>/dev/null | head -n 1)"
}

db_is_empty() {
  [ "$(pg_q -d "$(env_get UNICOP_PG_DATABASE)" -c "SELECT to_regclass('public.django_migrations') IS NULL")" = t ]
}

# An empty database gets the cached dump of a freshly upgraded one (same NetBox version), then
# `netbox migrate` applies what the plugin added since and collectstatic fills this root's static/.
# Prints "restored" when it did.
restore_db_dump() {
  local f log="$UNICOP_LOG_DIR/netbox-upgrade.log" db list
  f=$(db_dump_file); db=$(env_get UNICOP_PG_DATABASE)
  [ -s "$f" ] && db_is_empty || return 0
  say "restoring the migrated database from $f" >&2
  list=$(mktemp)
  # The ltree extension already exists (template1 has it): restore everything else.
  pg_restore -l "$f" | grep -v ' EXTENSION ' >"$list"
  if PGPASSWORD=$(env_get UNICOP_PG_PASSWORD) pg_restore --no-owner --no-privileges -L "$list" -h "$UNICOP_HOST" \
       -p "$UNICOP_PG_PORT" -U "$(env_get UNICOP_PG_USER)" -d "$db" "$f" >>"$log" 2>&1 \
     && in_root netbox migrate --no-input >>"$log" 2>&1 \
     && in_root netbox collectstatic --no-input >>"$log" 2>&1; then
    rm -f "$list"; echo restored; return 0
  fi
  rm -f "$list"
  say "WARNING: the cached database did not restore cleanly (see $log); migrating from nothing" >&2
  pg_q -d postgres -c "DROP DATABASE $db" -c "CREATE DATABASE $db OWNER $(env_get UNICOP_PG_USER)" >>"$log" 2>&1 \
    || die "could not recreate database $db after a failed restore (see $log)"
}

save_db_dump() {
  local f; f=$(db_dump_file)
  mkdir -p "$cache"
  PGPASSWORD=$(env_get UNICOP_PG_PASSWORD) pg_dump -Fc -h "$UNICOP_HOST" -p "$UNICOP_PG_PORT" \
    -U "$(env_get UNICOP_PG_USER)" -f "$f.tmp" "$(env_get UNICOP_PG_DATABASE)" 2>>"$UNICOP_LOG_DIR/netbox-upgrade.log" \
    && mv "$f.tmp" "$f" && say "saved the migrated database to $f" \
    || { rm -f "$f.tmp"; say "WARNING: could not save the database dump"; }
}

step_upgrade() {
  local log="$UNICOP_LOG_DIR/netbox-upgrade.log" was_empty=0
  marked migrated "$(schema_fingerprint)" && return 0
  db_is_empty && was_empty=1
  if [ "$was_empty" = 1 ] && [ -s "$(db_dump_file)" ]; then
    if daemon_alive netbox-gunicorn || daemon_alive netbox-rqworker; then stop_daemons; fi
    if [ "$(restore_db_dump)" = restored ]; then
      refresh_test_template
      mark migrated "$(schema_fingerprint)"
      return 0
    fi
  fi
  if ! in_root netbox migrate --check >"$log" 2>&1; then
    if daemon_alive netbox-gunicorn || daemon_alive netbox-rqworker; then
      say "stopping gunicorn and the RQ worker for the upgrade"
      stop_daemons
    fi
    say "netbox upgrade --no-input (a fresh database takes ~6 min; log $log)"
    in_root netbox upgrade --no-input >>"$log" 2>&1 || die "netbox upgrade failed (see $log)"
    [ "$was_empty" = 1 ] && save_db_dump
    refresh_test_template
  fi
  mark migrated "$(schema_fingerprint)"
}

# netbox_test_template: a copy of the freshly migrated database without users, from which
# scripts/test-plugin clones its test database instead of migrating one from scratch (~6 min).
# Made while NetBox is stopped (CREATE DATABASE ... TEMPLATE needs a database nobody is connected to).
refresh_test_template() {
  local t=netbox_test_template db; db=$(env_get UNICOP_PG_DATABASE)
  if pg_q -d postgres -c "DROP DATABASE IF EXISTS $t" -c "CREATE DATABASE $t TEMPLATE $db" 2>>"$UNICOP_LOG_DIR/netbox-upgrade.log" &&
     pg_q -d "$t" -c 'TRUNCATE users_user CASCADE' 2>>"$UNICOP_LOG_DIR/netbox-upgrade.log"; then
    say "refreshed database $t (for the plugin tests)"
  else
    say "WARNING: could not refresh database $t; plugin tests will migrate their database from scratch"
    pg_q -d postgres -c "DROP DATABASE IF EXISTS $t" 2>/dev/null || true
  fi
}

# The RQ workers' daemon names: the configured ones, then any other left running (the count lowered).
rqworker_daemons() {
  local i f
  echo netbox-rqworker
  for ((i = 2; i <= NETBOX_RQWORKERS; i++)); do echo "netbox-rqworker-$i"; done
  for f in "$UNICOP_RUN_DIR"/netbox-rqworker-*.pid; do
    [ -e "$f" ] || continue
    f=${f##*/}; f=${f%.pid}
    ((${f##*-} > NETBOX_RQWORKERS)) && echo "$f"
  done
  return 0
}

stop_daemons() {
  # In parallel: the RQ worker's warm shutdown alone takes ~5 s.
  local pids=() d
  stop_daemon netbox-gunicorn & pids+=($!)
  for d in $(rqworker_daemons); do stop_daemon "$d" & pids+=($!); done
  stop_daemon netbox-unicop-hashes & pids+=($!)
  wait "${pids[@]}"
}

start_daemons() {
  if ! daemon_alive netbox-gunicorn; then
    port_open "$UNICOP_NETBOX_PORT" && die "$UNICOP_HOST:$UNICOP_NETBOX_PORT is taken by another process (another checkout's stack? stop it with its scripts/stack down)"
    # 9>&- : the daemons must not inherit the provisioning lock.
    start_daemon netbox-gunicorn env -i "${root_env[@]}" "$CHROOT" "$rootfs" /usr/bin/env -C "$NB_ROOT" \
      "$NB_VENV/bin/gunicorn" --config "$NB_ROOT/contrib/gunicorn.py" \
      --bind "$UNICOP_HOST:$UNICOP_NETBOX_PORT" --workers "$NETBOX_WORKERS" netbox.wsgi 9>&-
  fi
  local d i
  for d in $(rqworker_daemons); do
    i=${d##*-}
    if [[ $i =~ ^[0-9]+$ ]] && ((i > NETBOX_RQWORKERS)); then stop_daemon "$d"; continue; fi
    daemon_alive "$d" || start_daemon "$d" env -i "${root_env[@]}" "$CHROOT" "$rootfs" \
      /usr/bin/env -C "$NB_ROOT" "$NB_VENV/bin/netbox" rqworker high default low 9>&-
  done
  daemon_alive netbox-unicop-hashes || start_daemon netbox-unicop-hashes env -i "${root_env[@]}" "$CHROOT" "$rootfs" \
    /usr/bin/env -C "$NB_ROOT" "$NB_VENV/bin/netbox" unicop_hashes 9>&-
}

wait_ready() {
  local i code
  for ((i = 0; i < 600; i++)); do
    code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$url/api/status/" 2>/dev/null || true)
    case "$code" in 200|401|403) return 0 ;; esac
    daemon_alive netbox-gunicorn || die "gunicorn exited (see $UNICOP_LOG_DIR/netbox-gunicorn.log)"
    sleep 0.2
  done
  die "NetBox API did not answer within 120s (see $UNICOP_LOG_DIR/netbox-gunicorn.log)"
}

# The superuser `admin` and one v2 API token for the stack; redone only when the stored token
# no longer authenticates (new database, new pepper, token deleted).
ensure_token() {
  api_get /api/status/ >/dev/null 2>&1 && return 0
  say "creating superuser admin and an API token"
  local out
  out=$(secret admin_password | in_root netbox shell -c '
import sys
from users.constants import TOKEN_PREFIX
from users.models import Token, User
password = sys.stdin.readline().strip()
user, _ = User.objects.get_or_create(username="admin", defaults={"email": "admin@unicop.invalid"})
user.is_superuser = True
user.is_active = True
user.set_password(password)
user.save()
Token.objects.filter(user=user, description="UNICOP local stack").delete()
token = Token.objects.create(user=user, description="UNICOP local stack", write_enabled=True)
print(f"UNICOP_TOKEN={TOKEN_PREFIX}{token.key}.{token.token}")
' 2>>"$UNICOP_LOG_DIR/netbox-upgrade.log") || die "creating the admin user/token failed (see $UNICOP_LOG_DIR/netbox-upgrade.log)"
  (umask 077; printf '%s' "$out" | sed -n 's/^UNICOP_TOKEN=//p' >"$secrets/api_token")
  [ -s "$secrets/api_token" ] || die "no token in the output of the token step"
  api_get /api/status/ >/dev/null || die "the new API token is refused by GET /api/status/"
}

# ---------------------------------------------------------------------------------------------

up() {
  command -v curl >/dev/null || apt_install curl
  port_open "$UNICOP_PG_PORT" || die "PostgreSQL is not up on $UNICOP_HOST:$UNICOP_PG_PORT: scripts/stack.d/postgres.sh up"
  port_open "$UNICOP_NETBOX_REDIS_PORT" || die "NetBox's Redis is not up on $UNICOP_HOST:$UNICOP_NETBOX_REDIS_PORT: scripts/stack.d/redis.sh up"
  exec 9>"$dir/.lock"
  flock -w 1800 9 || die "another 'netbox.sh up' holds $dir/.lock"
  timed "root (from the cache)" step_restore_root
  timed "root (debootstrap)" step_rootfs
  ensure_mounts
  step_root_files
  timed "venv (pip install netbox)" step_venv
  timed "plugin (pip install -e)" step_plugin
  local changed; changed=$(step_config)
  if { [ -n "$changed" ] || [ "$rebound" = 1 ]; } && { daemon_alive netbox-gunicorn || daemon_alive netbox-rqworker; }; then
    say "configuration or checkout changed: restarting gunicorn and the RQ worker"
    stop_daemons
  fi
  timed "database (migrate --check / upgrade)" step_upgrade
  timed "start + wait for the API" eval 'start_daemons; wait_ready'
  timed "admin + token" ensure_token
  env_set UNICOP_NETBOX_URL "$url"
  env_set UNICOP_NETBOX_TOKEN "$(cat "$secrets/api_token")"
  env_set UNICOP_NETBOX_ROOTFS "$rootfs"
  exec 9>&-
  status
}

status() {
  local body
  daemon_alive netbox-gunicorn || { echo "netbox: down (gunicorn not running)"; return 1; }
  body=$(api_get /api/status/ 2>/dev/null) || { echo "netbox: gunicorn running but GET $url/api/status/ with the stack token failed"; return 1; }
  local d
  for d in $(rqworker_daemons); do
    daemon_alive "$d" || { echo "netbox: API up but the RQ worker $d is not running (webhooks are delivered by the others only)"; return 1; }
  done
  daemon_alive netbox-unicop-hashes || { echo "netbox: API up but unicop_hashes is not running (current hashes stay stale)"; return 1; }
  python3 -c '
import json, sys
s = json.loads(sys.argv[1])
plugin = s.get("plugins", {}).get("unicop")
print("netbox: up on %s (NetBox %s, plugin unicop %s, rq workers %s)" % (
    sys.argv[2], s.get("netbox-version"), plugin or "MISSING", s.get("rq-workers-running")))
sys.exit(0 if plugin else 1)' "$body" "$url"
}

down() {
  stop_daemons
  unmount_all || true
}

logs() {
  local f
  for f in netbox-gunicorn $(rqworker_daemons) netbox-unicop-hashes; do
    echo "==> $UNICOP_LOG_DIR/$f.log <=="
    tail -n "${LINES:-50}" "$UNICOP_LOG_DIR/$f.log" 2>/dev/null || true
  done
}

# exec [VAR=value...] CMD... — e.g. `netbox.sh exec netbox nbshell`, used by scripts/test-plugin.
exec_in_root() {
  [ $# -gt 0 ] || die "usage: $0 exec [VAR=value...] CMD..."
  marked plugin "$NETBOX_SPEC $(sha256sum "$UNICOP_REPO/netbox-plugin/pyproject.toml" | cut -c1-16)" \
    || die "NetBox is not (fully) provisioned, or the plugin's pyproject.toml changed: run '$0 up' first"
  ensure_mounts
  if [ "$rebound" = 1 ] && daemon_alive netbox-gunicorn; then
    say "WARNING: the running NetBox still has the plugin of the previous checkout loaded: run '$0 up'"
  fi
  step_root_files
  in_root "$@"
}

case "${1:-status}" in
  up|down|status|logs) "${1:-status}" ;;
  exec) shift; exec_in_root "$@" ;;
  *) echo "usage: $0 up|down|status|logs|exec [VAR=value...] CMD..." >&2; exit 2 ;;
esac
