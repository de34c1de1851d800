#!/usr/bin/python
"""Converges one root's directory at the target in a single module run (decision 0058).

Every module task of a playbook costs a Python process at the target (~0.5 CPU-s each in AWX's
execution environment); the reconcilers used to run one per file, plus the fence and the pruning.
This module does all of it in one process: the fence, every file, the validation, the pruning,
and it reports what changed. The files are rendered on the controller (templates, set_fact) and
passed in as text, so the reconcilers' content stays in their templates.
"""

import json
import os
import shlex
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: unicop_files
short_description: Fence a UNICOP root's directory at the target and converge its files in one step
description:
  - Reads the fence record C(<root_dir>/unicop-state.json) and refuses a fencing token lower than
    the one recorded, before anything is written.
  - In apply mode records the new token first, then installs every file whose content or mode
    differs (all validated before any is installed), removes files that are no longer wanted, and
    records the zone serial last.
  - In check mode changes nothing and reports what an apply would change (drift).
  - The fence record is bookkeeping, not a change to what the root manages, so a run at an
    unchanged snapshot reports C(changed=false) (decision 0011).
options:
  root_dir:
    description: The root's directory at the target; created (mode 0755) if missing.
    type: path
    required: true
  fence:
    description: The run's identity, merged into the fence record.
    type: dict
    required: true
    suboptions:
      root: {description: The root key, type: str, required: true}
      fencing_token: {description: The lease's fencing token, type: int, required: true}
      run_id: {description: The run id, type: str, required: true}
      hash: {description: The snapshot's sha256, type: str, default: ''}
  files:
    description: Path relative to I(root_dir) → the file's whole content (mode 0644).
    type: dict
    default: {}
  validate:
    description: Path (a key of I(files)) → a command run on the new content before it is
      installed; C(%s) is the file to check. Not run in check mode.
    type: dict
    default: {}
  prune:
    description: Subdirectories of I(root_dir) (created, mode 0755) whose regular, non-hidden
      files are removed unless they are in I(files).
    type: list
    elements: str
    default: []
  zone_serial:
    description:
      - A serial that moves only when the records move. When the fence record's C(records_sha256)
        equals I(records_sha256), the recorded C(zone_serial) is kept, else the serial is the
        fencing token. Every occurrence of I(placeholder) in I(files) is replaced by it.
    type: dict
    suboptions:
      placeholder: {description: The text standing for the serial in I(files), type: str, required: true}
      records_sha256: {description: A hash of the records the serial versions, type: str, required: true}
"""

RETURN = r"""
changed_files:
  description: Paths of I(files) written (or that would be, in check mode), in the order given
  type: list
removed_files: {description: Paths removed by I(prune) (or that would be), sorted, type: list}
applied: {description: The fence record found before this run, type: dict}
zone_serial: {description: The serial chosen, when I(zone_serial) was given, type: int}
"""

STATE_FILE = 'unicop-state.json'
FILE_MODE = 0o644
DIR_MODE = 0o755


def read_fence(module, root_dir):
    path = os.path.join(root_dir, STATE_FILE)
    try:
        with open(path, encoding='utf-8') as f:
            record = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        module.fail_json(msg=f'the fence record {path} is unreadable ({e}); refusing to change anything')
    if not isinstance(record, dict):
        module.fail_json(msg=f'the fence record {path} is not a JSON object; refusing to change anything')
    return record


def write_atomically(path, content, mode):
    """Writes content next to path, then renames it over path: a reader sees old or new, never half."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix='.unicop-')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def current(path):
    """The file's content and permission bits, or (None, None) when it is not a regular file."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        return None, None
    with open(path, 'rb') as f:
        return f.read(), stat.S_IMODE(st.st_mode)


def ensure_dir(module, path):
    """Creates the directory or fixes its mode; True when it did (or would, in check mode)."""
    if os.path.islink(path):
        module.fail_json(msg=f'{path} is a symbolic link, not a directory; refusing to follow it')
    if os.path.isdir(path):
        if stat.S_IMODE(os.stat(path).st_mode) == DIR_MODE:
            return False
        if not module.check_mode:
            os.chmod(path, DIR_MODE)
        return True
    if not module.check_mode:
        os.makedirs(path, mode=DIR_MODE, exist_ok=True)
        os.chmod(path, DIR_MODE)
    return True


def inside(module, root_dir, rel):
    """root_dir/rel, refusing a path that leaves root_dir."""
    parts = rel.split('/')
    if not rel or rel.startswith('/') or any(p in ('', '.', '..') for p in parts):
        module.fail_json(msg=f'file path {rel!r} must be relative to the root directory, without . or ..')
    return os.path.join(root_dir, *parts)


def refuse_links(module, root_dir, parts):
    """Fails when an existing directory on the way from root_dir along parts is a symbolic link:
    creating, writing or pruning through it would change things outside root_dir."""
    path = root_dir
    for part in parts:
        path = os.path.join(path, part)
        if os.path.islink(path):
            module.fail_json(
                msg=f'{path} is a symbolic link; refusing to change anything through it '
                f'(it may lead outside {root_dir})'
            )


def validated(module, rel, command, content, directory):
    """Runs the validation command on a temporary copy of the new content; fails the task if it refuses."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.unicop-check-')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(content)
        rc, out, err = module.run_command([a.replace('%s', tmp) for a in shlex.split(command)])
        if rc != 0:
            module.fail_json(msg=f'{rel} failed to validate: {command} → {rc}', stdout=out, stderr=err)
    finally:
        os.unlink(tmp)


def state_text(record):
    return (json.dumps(record, indent=4, sort_keys=True) + '\n').encode('utf-8')


def as_text(content):
    if content is None:
        return ''
    try:
        return content.decode('utf-8')
    except UnicodeDecodeError:
        return '(binary content)\n'


def diff_of(rel, old, new):
    """A --diff entry: the file before and after."""
    return {'before_header': rel, 'after_header': rel, 'before': as_text(old), 'after': as_text(new)}


ARGUMENTS = {
    'root_dir': {'type': 'path', 'required': True},
    'fence': {
        'type': 'dict',
        'required': True,
        'options': {
            'root': {'type': 'str', 'required': True},
            'fencing_token': {'type': 'int', 'required': True},
            'run_id': {'type': 'str', 'required': True},
            'hash': {'type': 'str', 'default': ''},
        },
    },
    'files': {'type': 'dict', 'default': {}},
    'validate': {'type': 'dict', 'default': {}},
    'prune': {'type': 'list', 'elements': 'str', 'default': []},
    'zone_serial': {
        'type': 'dict',
        'options': {
            'placeholder': {'type': 'str', 'required': True},
            'records_sha256': {'type': 'str', 'required': True},
        },
    },
}


def check_arguments(module, p):
    """Refuses bad arguments before anything is read or written."""
    root_dir = os.path.normpath(p['root_dir'])
    for rel, content in p['files'].items():
        inside(module, root_dir, rel)
        refuse_links(module, root_dir, rel.split('/')[:-1])
        if not isinstance(content, str):
            module.fail_json(msg=f'files[{rel!r}] must be text, not {type(content).__name__}')
    for sub in p['prune']:
        inside(module, root_dir, sub)
        refuse_links(module, root_dir, sub.split('/'))
    for rel, command in p['validate'].items():
        if rel not in p['files']:
            module.fail_json(msg=f'validate names {rel!r}, which is not one of files')
        if '%s' not in command:
            module.fail_json(msg=f'validate command for {rel} must contain %s: {command}')
    if p['fence']['fencing_token'] < 0:
        module.fail_json(msg=f'fencing token {p["fence"]["fencing_token"]} is negative')


def apply_fence(module, root_dir, fence):
    """Refuses a token lower than the recorded one; in apply mode records this one. The record before."""
    applied = read_fence(module, root_dir)
    token = fence['fencing_token']
    try:
        recorded = int(applied.get('fencing_token', 0))
    except (TypeError, ValueError) as e:
        module.fail_json(
            msg=f'the fence record {os.path.join(root_dir, STATE_FILE)} is unreadable '
            f'(fencing_token {applied.get("fencing_token")!r}: {e}); refusing to change anything'
        )
    if token < recorded:
        module.fail_json(
            msg=f'stale fencing token {token} for root {fence["root"]} (run {fence["run_id"]}): '
            f'token {recorded} was already applied at the target (run {applied.get("run_id", "?")}); '
            'refusing to change anything',
            applied=applied,
        )
    if not module.check_mode:
        # Mode 0755 even under a umask or when it existed with another mode; bookkeeping, not a
        # change (like the record). A root_dir that is itself a link is the target's own choice.
        if os.path.islink(root_dir):
            os.makedirs(root_dir, exist_ok=True)
        else:
            ensure_dir(module, root_dir)
        write_atomically(os.path.join(root_dir, STATE_FILE), state_text({**applied, **fence}), FILE_MODE)
    return applied


def choose_serial(applied, token, records_sha256):
    """The recorded serial while the records are the ones recorded with it, else this run's token."""
    if applied.get('records_sha256') == records_sha256 and 'zone_serial' in applied:
        return int(applied['zone_serial'])
    return token


def main():
    module = AnsibleModule(argument_spec=ARGUMENTS, supports_check_mode=True)
    p = module.params
    check_arguments(module, p)
    root_dir, fence = os.path.normpath(p['root_dir']), p['fence']

    # 1. The fence, before anything else is written.
    applied = apply_fence(module, root_dir, fence)

    # 2. The content: the serial put in where the controller left its placeholder.
    files = {rel: content.encode('utf-8') for rel, content in p['files'].items()}
    serial = None
    if p['zone_serial']:
        z = p['zone_serial']
        serial = choose_serial(applied, fence['fencing_token'], z['records_sha256'])
        files = {rel: c.replace(z['placeholder'].encode(), str(serial).encode()) for rel, c in files.items()}

    # 3. The files that differ — all validated before any directory or file is made — then the
    #    directories, then the files.
    todo, diffs = [], []
    for rel, content in files.items():
        path = inside(module, root_dir, rel)
        old, mode = current(path)
        if old != content or mode != FILE_MODE:
            todo.append((rel, path, content))
            diffs.append(diff_of(rel, old, content))
    if not module.check_mode:
        for rel, _path, content in todo:
            if rel in p['validate']:
                validated(module, rel, p['validate'][rel], content, root_dir)
    changed = False
    for sub in p['prune']:
        changed |= ensure_dir(module, inside(module, root_dir, sub))
    for rel in files:
        parent = os.path.dirname(inside(module, root_dir, rel))
        if parent != root_dir:
            changed |= ensure_dir(module, parent)
    if not module.check_mode:
        for _rel, path, content in todo:
            write_atomically(path, content, FILE_MODE)

    # 4. Files no longer wanted in the pruned directories.
    removed = []
    for sub in p['prune']:
        directory = inside(module, root_dir, sub)
        for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
            rel, path = f'{sub}/{name}', os.path.join(directory, name)
            if name.startswith('.') or rel in files or not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            removed.append(rel)
            diffs.append(diff_of(rel, current(path)[0], None))
            if not module.check_mode:
                os.unlink(path)

    # 5. The serial is recorded once the zones carrying it are installed.
    if serial is not None and not module.check_mode:
        record = {
            **applied,
            **fence,
            'zone_serial': serial,
            'records_sha256': p['zone_serial']['records_sha256'],
        }
        write_atomically(os.path.join(root_dir, STATE_FILE), state_text(record), FILE_MODE)

    result = {
        'changed': changed or bool(todo) or bool(removed),
        'changed_files': [rel for rel, _path, _content in todo],
        'removed_files': removed,
        'applied': applied,
    }
    if serial is not None:
        result['zone_serial'] = serial
    if module._diff and diffs:
        result['diff'] = diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
