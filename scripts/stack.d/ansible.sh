#!/usr/bin/env bash
# ansible-core and ansible-runner from PyPI (plus ansible-lint, ruff, pytest) in a venv under
# var/pyenv, created with the machine's python3. Nothing runs as a daemon: "up" means installed.
STACK_SERVICE=ansible
source "$(dirname "$0")/common.sh"

venv="$UNICOP_VAR/pyenv"
reqs="$(dirname "$0")/python-tools.txt"
marker="$venv/.installed"

up() {
  # named-checkzone validates the zones the prefix reconciler renders (awx-playbooks/prefix.yml).
  apt_install bind9-utils
  if [ ! -f "$marker" ] || ! cmp -s "$reqs" "$marker"; then
    say "creating $venv"
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs" >"$UNICOP_LOG_DIR/ansible.log" 2>&1 \
      || die "pip install failed (see $UNICOP_LOG_DIR/ansible.log)"
    cp "$reqs" "$marker"
  fi
  env_set UNICOP_ANSIBLE_BIN "$venv/bin"
  status
}

status() {
  [ -x "$venv/bin/ansible-runner" ] || { echo "ansible: not installed"; return 1; }
  echo "ansible: $("$venv/bin/ansible" --version 2>/dev/null | sed -n 1p | tr -d '[]'), ansible-runner $("$venv/bin/ansible-runner" --version)"
}

down() { :; }
logs() { tail -n "${LINES:-50}" "$UNICOP_LOG_DIR/ansible.log"; }

"${1:-status}"
