# Shared by deploy/build-images and scripts/suites.d/40-deploy.sh (sourced): podman settings for
# this project's machines, the Debian base image made offline, and image builds cached outside
# the clone in $UNICOP_CACHE (default /var/cache/unicop):
#   base/debian-trixie-minbase.tar    the debootstrap root, imported as debian:trixie-slim
#   images/<name>-<key>.tar           `podman save` of each built image; <key> hashes the
#                                     Dockerfile, its build inputs and the base image
#   podman-compose/                   a venv with podman-compose (PyPI)
# A machine with a registry can ignore all of this: the Dockerfiles build with plain
# `docker build`/`podman build` from docker.io/library/debian:trixie-slim.
set -euo pipefail

UNICOP_REPO="${UNICOP_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
UNICOP_CACHE="${UNICOP_CACHE:-/var/cache/unicop}"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$UNICOP_REPO/deploy/podman/containers.conf}"
export BUILDAH_FORMAT=docker # keeps HEALTHCHECK (the OCI image format has no field for it)
DEBIAN_SUITE=trixie
BASE_IMAGE=docker.io/library/debian:trixie-slim
PODMAN_COMPOSE_VERSION=1.6.0
IMAGE_TAG="${UNICOP_IMAGE_TAG:-latest}"

dsay() { printf '[deploy] %s\n' "$*" >&2; }
ddie() { dsay "ERROR: $*"; exit 1; }

# Podman 4.3 from Debian with runc, and the CNI dnsname plugin so that compose services find each
# other by name.
ensure_podman() {
  local missing=() p
  for p in podman runc golang-github-containernetworking-plugin-dnsname dnsmasq-base debootstrap; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  dsay "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; } ||
    ddie "could not install ${missing[*]}"
}

debian_mirror() {
  local m
  m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    sed -e 's/#.*//' | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n 1 | tr -d ' ' || true)
  m=${m%/}
  echo "${UNICOP_DEBIAN_MIRROR:-${m:-http://deb.debian.org/debian}}"
}

# ensure_base_image — debian:trixie-slim in podman's storage: as it is, else imported from the
# cached tarball, else made with debootstrap (about 80 s) and cached.
ensure_base_image() {
  podman image exists "$BASE_IMAGE" && return 0
  local tar="$UNICOP_CACHE/base/debian-$DEBIAN_SUITE-minbase.tar" dir mirror
  mkdir -p "$UNICOP_CACHE/base"
  if [ ! -s "$tar" ]; then
    dir=$(mktemp -d "$UNICOP_CACHE/base/root.XXXXXX")
    mirror=$(debian_mirror)
    dsay "debootstrap --variant=minbase $DEBIAN_SUITE ($mirror) for $BASE_IMAGE"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$dir" "$mirror" >"$UNICOP_CACHE/base/debootstrap.log" 2>&1 ||
      { rm -rf --one-file-system "$dir"; ddie "debootstrap failed (see $UNICOP_CACHE/base/debootstrap.log)"; }
    # The sources an official debian:trixie-slim has (updates and security too); no caches.
    rm -f "$dir/etc/apt/sources.list"
    cat >"$dir/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $DEBIAN_SUITE $DEBIAN_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $DEBIAN_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
    : >"$dir/etc/resolv.conf"
    tar --numeric-owner -C "$dir" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf --one-file-system "$dir"
  fi
  dsay "podman import $tar as $BASE_IMAGE"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' \
    "$tar" "localhost/debian:$DEBIAN_SUITE-slim" >/dev/null
  podman tag "localhost/debian:$DEBIAN_SUITE-slim" "$BASE_IMAGE"
}

# input_files PATH... — the files of those paths as a checkout has them (tracked, and untracked
# but not ignored), NUL-separated, sorted.
input_files() {
  (cd "$UNICOP_REPO" && git ls-files -z --cached --others --exclude-standard -- "$@" |
    while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done | sort -z)
}

# image_key DOCKERFILE PATH... — 16 hex digits over the base image, the Dockerfile and every input
# file's path, mode and content.
image_key() {
  local dockerfile=$1; shift
  {
    podman image inspect --format '{{.Id}}' "$BASE_IMAGE"
    sha256sum "$UNICOP_REPO/$dockerfile" | cut -c1-64
    input_files "$@" | (cd "$UNICOP_REPO" && xargs -0r stat -c '%n %a')
    input_files "$@" | (cd "$UNICOP_REPO" && xargs -0r sha256sum)
  } | sha256sum | cut -c1-16
}

# build_image NAME DOCKERFILE PATH... — localhost/NAME:<key> from podman's storage, else from the
# cache tarball, else built from a context holding only PATH... (plus .dockerignore) and saved to
# the cache; then tagged localhost/NAME:$IMAGE_TAG (the name compose.yaml uses). Prints the key.
build_image() {
  local name=$1 dockerfile=$2; shift 2
  local key ref tar ctx log t=$SECONDS
  key=$(image_key "$dockerfile" "$@")
  ref="localhost/$name:$key"
  tar="$UNICOP_CACHE/images/$name-$key.tar"
  log="$UNICOP_CACHE/images/$name-$key.log"
  mkdir -p "$UNICOP_CACHE/images"
  if podman image exists "$ref"; then
    # Built here before; keep the cache whole for a machine whose podman storage is wiped.
    [ -s "$tar" ] || { podman save --quiet --format docker-archive -o "$tar.tmp" "$ref" && mv "$tar.tmp" "$tar"; }
  elif [ -s "$tar" ]; then
    dsay "$name: podman load (cached $key)"
    podman load --quiet -i "$tar" >/dev/null || ddie "podman load $tar failed"
  else
    dsay "$name: building $key from $dockerfile (log $log)"
    ctx=$(mktemp -d "${TMPDIR:-/tmp}/unicop-ctx.XXXXXX")
    input_files "$@" | (cd "$UNICOP_REPO" && tar --null -T - -cf -) | tar -xf - -C "$ctx"
    mkdir -p "$ctx/$(dirname "$dockerfile")"
    cp "$UNICOP_REPO/$dockerfile" "$ctx/$dockerfile"
    local ca=()
    # A TLS-intercepting proxy's CA for the build stages (never copied into a runtime stage).
    if ls "${UNICOP_BUILD_CA_DIR:-/usr/local/share/ca-certificates}"/*.crt >/dev/null 2>&1; then
      ca=(--volume "${UNICOP_BUILD_CA_DIR:-/usr/local/share/ca-certificates}:/run/build-ca:ro")
    fi
    if ! podman build --format docker --layers --pull=never "${ca[@]}" -f "$ctx/$dockerfile" -t "$ref" "$ctx" >"$log" 2>&1; then
      rm -rf "$ctx"
      tail -n 30 "$log" >&2
      ddie "$name: podman build failed (see $log)"
    fi
    rm -rf "$ctx"
    podman save --quiet --format docker-archive -o "$tar.tmp" "$ref" && mv "$tar.tmp" "$tar"
    # Keep the two newest tarballs of this image.
    # shellcheck disable=SC2012 # names are <image>-<16 hex>.tar; "?" x16 keeps unicop-kafka out of unicop's
    ls -t "$UNICOP_CACHE/images/$name"-????????????????.tar 2>/dev/null | tail -n +3 |
      while read -r old; do rm -f "$old" "${old%.tar}.log"; done
    dsay "$name: built in $((SECONDS - t))s"
  fi
  podman tag "$ref" "localhost/$name:$IMAGE_TAG"
  echo "$key"
}

# ensure_podman_compose — podman-compose from PyPI in a venv under the cache; prints its path.
ensure_podman_compose() {
  local venv="$UNICOP_CACHE/podman-compose"
  if [ "$("$venv/bin/podman-compose" --version 2>/dev/null | grep -oE 'podman-compose version [0-9.]+' | awk '{print $3}')" != "$PODMAN_COMPOSE_VERSION" ]; then
    dsay "installing podman-compose==$PODMAN_COMPOSE_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" >/dev/null && "$venv/bin/pip" install -q "podman-compose==$PODMAN_COMPOSE_VERSION" >/dev/null ||
      ddie "could not install podman-compose"
  fi
  echo "$venv/bin/podman-compose"
}
