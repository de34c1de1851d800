"""Run by the image's `bootstrap` command through `netbox shell`: makes the accounts compose needs,
from secret files, idempotently (a second run changes nothing and says so).

- NETBOX_ADMIN_USERNAME (default admin) with the password in NETBOX_ADMIN_PASSWORD_FILE: a
  superuser for people (skipped when the file is not given).
- UNICOP_NETBOX_USERNAME (default unicop) and its v2 API token, read from UNICOP_NETBOX_TOKEN_FILE
  as the workers get it (nbt_<key>.<token>): the user UNICOP reads and writes NetBox as (its
  changes are echoes to the bridge, not work). A token with that key but another value is replaced.
  Not a superuser (a superuser left by an older bootstrap is demoted): it is given exactly the
  object permissions in UNICOP_PERMISSIONS below (why: docs/decisions/0030, "The unicop account");
  permissions an operator adds to it are left alone.
Nothing secret is printed.
"""

import os
import re
from pathlib import Path

from django.contrib.contenttypes.models import ContentType
from users.constants import TOKEN_PREFIX
from users.models import ObjectPermission, Token, User

from unicop.models import ReconciliationRun, Rollout, Root
from unicop.snapshot import snapshot_models

# What the workers and the bridge call, all of it under /api/plugins/unicop/ (core/plugin/client.ts)
# plus /api/status/ (any user): the plugin's views check these. A snapshot is read whole or refused
# (docs/decisions/0048): the account must view every object a snapshot can show — the catalogue's
# anchors and members, what their foreign keys name, tags (unicop.snapshot.snapshot_models). The
# journal entries are written by the plugin inside the run write: no permission of the token's user.
UNICOP_PERMISSIONS = {
    # root listing, snapshot, resolve (view); lease, renew, release, freeze, unfreeze (change)
    'UNICOP: roots': ([Root], ['view', 'change']),
    # run history (view); a run record created and moved along its states, fenced (add, change)
    'UNICOP: reconciliation runs': ([ReconciliationRun], ['view', 'add', 'change']),
    # gradual rollout (decision 0061): the resolver's gate and the rollout worker's run ends (POST: change);
    # the bridge's rollout list/show (view) and resume/abort (change)
    'UNICOP: rollouts': ([Rollout], ['view', 'change']),
    # the objects a snapshot shows (view only)
    'UNICOP: snapshot objects': (sorted(snapshot_models(), key=lambda m: m._meta.label_lower), ['view']),
}


def first_line(variable):
    path = os.environ.get(variable, '').strip()
    if not path:
        return ''
    lines = Path(path).read_text().splitlines()
    return lines[0].strip() if lines else ''


def ensure_user(username, *, superuser, password=None):
    user, created = User.objects.get_or_create(username=username)
    changed = created
    if superuser and not (user.is_superuser and user.is_active):
        user.is_superuser = user.is_active = True
        changed = True
    if not superuser and (user.is_superuser or not user.is_active):
        user.is_superuser, user.is_active = False, True
        changed = True
    if password and not user.check_password(password):
        user.set_password(password)
        changed = True
    if changed:
        user.save()
    return user, 'created' if created else 'updated' if changed else 'unchanged'


admin_password = first_line('NETBOX_ADMIN_PASSWORD_FILE')
if admin_password:
    admin_name = os.environ.get('NETBOX_ADMIN_USERNAME', 'admin')
    _, state = ensure_user(admin_name, superuser=True, password=admin_password)
    print(f'user {admin_name}: {state}')

token_text = first_line('UNICOP_NETBOX_TOKEN_FILE')
match = re.fullmatch(rf'{TOKEN_PREFIX}([A-Za-z0-9]+)\.([A-Za-z0-9]+)', token_text)
if not match:
    raise SystemExit('UNICOP_NETBOX_TOKEN_FILE must hold a v2 token: nbt_<key>.<token>')
key, plaintext = match.groups()
name = os.environ.get('UNICOP_NETBOX_USERNAME', 'unicop')
user, state = ensure_user(name, superuser=False)
print(f'user {name}: {state}')
for perm_name, (models, actions) in UNICOP_PERMISSIONS.items():
    perm, created = ObjectPermission.objects.get_or_create(name=perm_name, defaults={'actions': actions})
    object_types = [ContentType.objects.get_for_model(model) for model in models]
    changed = False
    if (perm.enabled, sorted(perm.actions), perm.constraints) != (True, sorted(actions), None):
        perm.enabled, perm.actions, perm.constraints = True, actions, None
        perm.save()
        changed = True
    if {t.pk for t in perm.object_types.all()} != {t.pk for t in object_types}:
        perm.object_types.set(object_types)
        changed = True
    if not perm.users.filter(pk=user.pk).exists():
        perm.users.add(user)
        changed = True
    state = 'created' if created else 'updated' if changed else 'unchanged'
    print(f'permission {perm_name!r} ({", ".join(actions)}) for {name}: {state}')
token = Token.objects.filter(key=key).first()
if token is not None and token.user_id == user.pk and token.validate(plaintext) and token.write_enabled:
    print(f'API token of {name}: unchanged')
else:
    if token is not None:
        token.delete()
    Token(
        user=user, version=2, key=key, token=plaintext, write_enabled=True, description='UNICOP (bootstrap)'
    ).save()
    print(f'API token of {name}: {"replaced" if token is not None else "created"}')
