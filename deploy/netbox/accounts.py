"""Run by the image's `bootstrap` command through `netbox shell`: makes the accounts compose needs,
from secret files, idempotently (a second run changes nothing and says so).

- NETBOX_ADMIN_USERNAME (default admin) with the password in NETBOX_ADMIN_PASSWORD_FILE: a
  superuser for people (skipped when the file is not given).
- UNICOP_NETBOX_USERNAME (default unicop) and its v2 API token, read from UNICOP_NETBOX_TOKEN_FILE
  as the workers get it (nbt_<key>.<token>): the user UNICOP reads and writes NetBox as (its
  changes are echoes to the bridge, not work). A token with that key but another value is replaced.
Nothing secret is printed.
"""

import os
import re
from pathlib import Path

from users.constants import TOKEN_PREFIX
from users.models import Token, User


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
# A superuser: UNICOP reads every object type of the root catalogue and writes run records,
# journal entries and root status (NetBox object permissions can narrow this; docs/decisions/0030).
user, state = ensure_user(name, superuser=True)
print(f'user {name}: {state}')
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
