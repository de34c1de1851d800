#!/bin/bash
# Entrypoint of the netbox-unicop image (installed as /usr/local/bin/netbox-unicop):
#   web [GUNICORN ARGS...]   wait for PostgreSQL and Redis, `netbox upgrade` (migrations, search
#                            index, stale content types; static files were collected at build),
#                            then gunicorn on 0.0.0.0:$NETBOX_PORT (8080) with /static/ served
#   rqworker [QUEUES...]     wait, then until the database is migrated, then NetBox's RQ worker
#                            (queues high default low): it delivers the webhooks
#   hashes                   wait, then until migrated, then the plugin's `unicop_hashes`: keeps the
#                            roots' current hashes fresh in the background (docs/decisions/0043)
#   bootstrap                one-shot: wait until migrated; the admin and unicop users and the
#                            unicop API token (deploy/netbox/accounts.py); the plugin's
#                            `unicop_bootstrap` (webhook to $UNICOP_BRIDGE_WEBHOOK_URL signed with
#                            the secret in $UNICOP_WEBHOOK_SECRET_FILE, event rule)
#   healthcheck              the image's HEALTHCHECK (deploy/netbox/container.py)
#   anything else            run as is (e.g. `netbox showmigrations unicop`)
# Every dependency is waited for here (up to $NETBOX_WAIT_SECONDS, default 1800): compose starts the
# services together, and podman 4.3 does not wait for health.
set -euo pipefail
wait_seconds="${NETBOX_WAIT_SECONDS:-1800}"
helper=/opt/netbox/container.py

log() { printf 'netbox-unicop: %s\n' "$*" >&2; }

wait_migrated() {
  local deadline=$((SECONDS + wait_seconds))
  until netbox migrate --check >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { log "the database is still not migrated after ${wait_seconds}s"; exit 1; }
    log "waiting for the web container to migrate the database"
    sleep 5
  done
}

cmd="${1:-web}"
[ $# -gt 0 ] && shift
case "$cmd" in
  web)
    python "$helper" wait-services "$wait_seconds"
    log "netbox upgrade (migrations; a new database takes minutes)"
    netbox upgrade --no-input --skip-static
    exec gunicorn --config /opt/netbox/gunicorn.py --pythonpath /opt/netbox "$@" static_wsgi:application
    ;;
  rqworker)
    python "$helper" wait-services "$wait_seconds"
    wait_migrated
    [ $# -gt 0 ] || set -- high default low
    exec netbox rqworker "$@"
    ;;
  hashes)
    python "$helper" wait-services "$wait_seconds"
    wait_migrated
    exec netbox unicop_hashes "$@"
    ;;
  bootstrap)
    python "$helper" wait-services "$wait_seconds"
    wait_migrated
    netbox shell --no-startup --command "exec(open('/opt/netbox/accounts.py').read())"
    : "${UNICOP_BRIDGE_WEBHOOK_URL:?set UNICOP_BRIDGE_WEBHOOK_URL (the bridge, e.g. http://bridge:8080/webhooks/netbox)}"
    : "${UNICOP_WEBHOOK_SECRET_FILE:?set UNICOP_WEBHOOK_SECRET_FILE (the file holding the webhook secret)}"
    exec netbox unicop_bootstrap --url "$UNICOP_BRIDGE_WEBHOOK_URL" --secret-file "$UNICOP_WEBHOOK_SECRET_FILE"
    ;;
  healthcheck)
    exec python "$helper" healthcheck
    ;;
  *)
    exec "$cmd" "$@"
    ;;
esac
