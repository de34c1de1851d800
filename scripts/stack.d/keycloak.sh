#!/usr/bin/env bash
# Keycloak (org.keycloak:keycloak-quarkus-dist from Maven Central), the identity provider of the admin
# API, the workers' POST /sweep and the CLI (docs/decisions/0051-identity-keycloak.md): realm `unicop`
# (deploy/keycloak/unicop-realm.json) on http://127.0.0.1:$UNICOP_KEYCLOAK_PORT, loopback only.
#
# Cold: the zip is downloaded once into $UNICOP_CACHE/keycloak, checked against the SHA-512 pinned
# below (the one Maven Central publishes beside it), unpacked and built there (`kc.sh build`, the
# Quarkus augmentation: ~40 s) under a lock. Each clone runs a hard-linked copy of that built tree
# under var/keycloak/dist (its data/ is the clone's own) with `start --optimized`, so a warm start
# does not build. The database is Keycloak's H2 file (dev-file) in that data/: the first start creates
# the schema and the master realm and imports realm `unicop` from the committed file, with the
# secrets generated for this clone under var/keycloak/secrets (0600) put in through the file's ${...}
# placeholders; later starts find all that there (about 35 s less at load 20). Keycloak imports a
# realm only into a database without it, so a changed realm file, secret or build starts from an
# empty data/ (the stamp in data/.unicop-realm, written once the realm answered).
# Keycloak 26.7 needs Java 21+: the JDK is looked for under /usr/lib/jvm (Temurin 25 on this machine
# kind) and used for Keycloak only. Heap capped at 512 MiB; C1 only (Keycloak picks G1 itself): a
# development stack starts sooner on two shared cores, and needs no peak throughput.
#
#   up      install what is missing, start, wait for the realm's discovery document, record the facts
#   status  up or down
#   down    stop
#   logs
STACK_SERVICE=keycloak
source "$(dirname "$0")/common.sh"

KC_VERSION=26.7.3
KC_SHA512=15c764765576eef267cf15cc5225a5826b5394a25a83d9bfa5b8544e4bbba690cb743c9d384200b93bb71ee4c4a328e1dd8c0a00f822fd3e6e154f14b1e47216
KC_PORT="${UNICOP_KEYCLOAK_PORT:-18180}"
KC_MANAGEMENT_PORT="${UNICOP_KEYCLOAK_MANAGEMENT_PORT:-18190}"
# Build-time options: a change of these rebuilds the cached tree.
KC_BUILD_OPTIONS=(--db=dev-file --cache=local --health-enabled=true)
CACHE="$UNICOP_CACHE/keycloak"
zip="$CACHE/keycloak-quarkus-dist-$KC_VERSION.zip"
built="$CACHE/keycloak-$KC_VERSION-built"
dir="$UNICOP_VAR/keycloak"
dist="$dir/dist"
secrets="$dir/secrets"
realm_file="$UNICOP_REPO/deploy/keycloak/unicop-realm.json"
base="http://$UNICOP_HOST:$KC_PORT"
issuer="$base/realms/unicop"

# A JDK of version 21 or later; Keycloak only.
java_home() {
  local j v
  for j in "${UNICOP_KEYCLOAK_JAVA_HOME:-}" /usr/lib/jvm/temurin-25-jdk-amd64 /usr/lib/jvm/*; do
    [ -n "$j" ] && [ -x "$j/bin/java" ] || continue
    v=$("$j/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    [ "${v%%.*}" -ge 21 ] 2>/dev/null && { echo "$j"; return 0; }
  done
  die "Keycloak $KC_VERSION needs Java 21 or later: none under /usr/lib/jvm (set UNICOP_KEYCLOAK_JAVA_HOME)"
}

download() {
  [ -f "$zip" ] && return 0
  say "downloading Keycloak $KC_VERSION from Maven Central"
  local url="https://repo1.maven.org/maven2/org/keycloak/keycloak-quarkus-dist/$KC_VERSION/keycloak-quarkus-dist-$KC_VERSION.zip"
  curl -fsSL --retry 3 -o "$zip.tmp" "$url" || die "download of $url failed"
  echo "$KC_SHA512  $zip.tmp" | sha512sum -c --quiet - || { rm -f "$zip.tmp"; die "checksum mismatch for $url"; }
  mv "$zip.tmp" "$zip"
}

# The unpacked and built tree in the cache, once per version and build options (serialised by a lock).
build() {
  local stamp="$KC_VERSION ${KC_BUILD_OPTIONS[*]}"
  [ -f "$built/.unicop-build" ] && [ "$(cat "$built/.unicop-build")" = "$stamp" ] && return 0
  command -v unzip >/dev/null || apt_install unzip
  mkdir -p "$CACHE"
  exec 8>"$CACHE/.build.lock"
  flock -w 900 8 || die "another build holds $CACHE/.build.lock"
  if ! { [ -f "$built/.unicop-build" ] && [ "$(cat "$built/.unicop-build")" = "$stamp" ]; }; then
    download
    local tmp; tmp=$(mktemp -d -p "$CACHE" build.XXXXXX)
    unzip -q "$zip" -d "$tmp"
    say "kc.sh build ${KC_BUILD_OPTIONS[*]} (log $UNICOP_LOG_DIR/keycloak-build.log)"
    local t=$SECONDS
    JAVA_HOME=$(java_home) "$tmp/keycloak-$KC_VERSION/bin/kc.sh" build "${KC_BUILD_OPTIONS[@]}" \
      >"$UNICOP_LOG_DIR/keycloak-build.log" 2>&1 || { rm -rf "$tmp"; die "kc.sh build failed (see $UNICOP_LOG_DIR/keycloak-build.log)"; }
    say "kc.sh build: done in $((SECONDS - t))s"
    echo "$stamp" >"$tmp/keycloak-$KC_VERSION/.unicop-build"
    rm -rf "$built"
    mv "$tmp/keycloak-$KC_VERSION" "$built"
    rm -rf "$tmp"
  fi
  exec 8>&-
}

# This clone's copy of the built tree (hard links where the file system allows), its own data/.
install_dist() {
  if [ ! -f "$dist/.unicop-build" ] || ! cmp -s "$dist/.unicop-build" "$built/.unicop-build"; then
    rm -rf "$dist"
    mkdir -p "$dir"
    cp -al "$built" "$dist" 2>/dev/null || { rm -rf "$dist"; cp -a "$built" "$dist"; }
  fi
  if [ "$(cat "$dist/data/.unicop-realm" 2>/dev/null)" != "$(realm_stamp)" ]; then
    rm -rf "$dist/data"
    mkdir -p "$dist/data/import"
    cp "$realm_file" "$dist/data/import/unicop-realm.json"
  fi
}

# What the database's realm was made from: the realm file, this clone's secrets, the build.
realm_stamp() {
  cat "$realm_file" "$built/.unicop-build" "$secrets/cli-secret" "$secrets/test-secret" \
    "$secrets/user-password" | sha256sum | cut -c1-64
}

# The realm's discovery document first (404 until the realm is imported; Keycloak logs every "health
# down" answer at info), then the health check.
ready() { curl -fsS -o /dev/null "$issuer/.well-known/openid-configuration" 2>/dev/null &&
  curl -fsS -o /dev/null "http://$UNICOP_HOST:$KC_MANAGEMENT_PORT/health/ready" 2>/dev/null; }

up() {
  build
  if ! daemon_alive keycloak; then
    port_open "$KC_PORT" && die "$UNICOP_HOST:$KC_PORT is taken by another process (another checkout's stack? stop it with its scripts/stack down)"
    secret cli-secret >/dev/null; secret test-secret >/dev/null; secret user-password >/dev/null
    install_dist
    # Generated once per clone (0600), handed to Keycloak through the environment, never on a command line.
    UNICOP_KC_CLI_SECRET=$(secret cli-secret) UNICOP_KC_TEST_SECRET=$(secret test-secret) \
      UNICOP_KC_USER_PASSWORD=$(secret user-password) \
      JAVA_HOME=$(java_home) JAVA_OPTS_KC_HEAP="-Xms64m -Xmx512m" \
      JAVA_OPTS_APPEND="-XX:TieredStopAtLevel=1" \
      start_daemon keycloak "$dist/bin/kc.sh" start --optimized --import-realm \
      --http-enabled=true --http-host="$UNICOP_HOST" --http-port="$KC_PORT" \
      --http-management-port="$KC_MANAGEMENT_PORT" --hostname="$base" --log-level=info \
      --cache=local
  fi
  local i
  for ((i = 0; i < 300; i++)); do ready && break; daemon_alive keycloak || die "Keycloak exited (see $UNICOP_LOG_DIR/keycloak.log)"; sleep 1; done
  ready || die "Keycloak was not ready within 300s (see $UNICOP_LOG_DIR/keycloak.log)"
  realm_stamp >"$dist/data/.unicop-realm"
  env_set UNICOP_KEYCLOAK_URL "$base"
  env_set UNICOP_OIDC_ISSUER "$issuer"
  # The CLI's automation identity (client credentials; its service account is an operator).
  env_set UNICOP_OIDC_CLIENT_ID unicop-cli
  env_set UNICOP_OIDC_CLIENT_SECRET "file:$secrets/cli-secret"
  # Development stack only: the tests' password-grant client and the test users' password (files).
  env_set UNICOP_KEYCLOAK_TEST_SECRET_FILE "$secrets/test-secret"
  env_set UNICOP_KEYCLOAK_USER_PASSWORD_FILE "$secrets/user-password"
  status
}

status() {
  if ready; then
    echo "keycloak: up on $base (Keycloak $KC_VERSION, realm unicop)"
  else
    echo "keycloak: down"; return 1
  fi
}

down() { stop_daemon keycloak 30; }

logs() { tail -n "${LINES:-80}" "$UNICOP_LOG_DIR/keycloak.log" 2>/dev/null || true; }

"${1:-status}"
