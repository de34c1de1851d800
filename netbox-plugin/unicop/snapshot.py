"""A root's snapshot: its anchor and members as canonical JSON, and the sha256 of those bytes.

Canonical form (docs/plugin-api.md, docs/decisions/0021-plugin-snapshot-and-current-hash.md):

    {"root": {"kind", "key", "anchor": {"object_type", "id", <fields>}},
     "members": [{"object_type", "id", <fields>}, ...]}            # sorted by (object_type, id)

- fields: the model's concrete columns by field name, except volatile ones: `created`, `last_updated`,
  denormalised caches (names starting with `_`, counter caches). `custom_field_data` is `custom_fields`.
- a foreign key is {"id": N} plus the target's `name`, `slug` or `address` where it has them; a
  content type is "app_label.model"; `tags` is the sorted list of tag slugs.
- addresses, MACs, decimals and dates are their string forms.
- every other non-JSON value a NetBox 4.7 column holds has its string form too (`str()`, the form the
  hash has always used): PostgreSQL ranges (`ipam.vlangroup` `vid_ranges`: "[1, 4095)"), times,
  durations, UUIDs, time zones, WWNs, also inside arrays and JSON; bytes are base64. A value of any other
  type, or a float that is not finite, is refused (SnapshotUnencodable, naming the object and field),
  never a guessed form: its `str()` may not be stable, and the hash must be.
- bytes: json.dumps(sort_keys=True, separators=(',', ':'), ensure_ascii=False) encoded as UTF-8.

Queries per snapshot are bounded by the number of member types and foreign keys, never by the number
of members. `read_snapshot` reads inside one REPEATABLE READ READ ONLY transaction.

A snapshot is whole or not given (docs/decisions/0048): read for a NetBox user (`viewer`, the API's),
it is refused with SnapshotHidden when that user's view permissions — object permissions with their
constraints, as NetBox's `RestrictedQuerySet.restrict(user, 'view')` applies them — hide any object
in it: the anchor, a member, an object a foreign key names, a tag. Never a filtered snapshot: it is the
desired state AWX converges to (a hidden member would be undone), and its hash is the root's.
"""

import base64
import datetime
import decimal
import hashlib
import ipaddress
import json
import math
import uuid
import zoneinfo
from collections import defaultdict
from contextlib import contextmanager

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from extras.models import Tag, TaggedItem
from netaddr import EUI, IPAddress, IPNetwork, IPRange
from psycopg.types.range import Range
from utilities.fields import CounterCacheField

from .catalogue import catalogue

VOLATILE_FIELDS = frozenset({'created', 'last_updated'})
LABEL_FIELDS = ('name', 'slug', 'address')


class SnapshotHidden(Exception):
    """The reader's NetBox view permissions hide objects of the snapshot: it is not given, even in part."""

    def __init__(self, root_key):
        super().__init__(
            f'the snapshot of {root_key} holds objects this token may not view: a snapshot is read whole, '
            'by an account allowed to view every object of the root catalogue (docs/security.md)'
        )


class SnapshotUnencodable(ValueError):
    """A field value the snapshot has no canonical form for: the snapshot (and the hash) is not given."""

    def __init__(self, object_type, object_id, field, value, why=None):
        self.object_type, self.object_id, self.field = object_type, object_id, field
        why = why or f'a {type(value).__module__}.{type(value).__qualname__} value has no canonical form'
        super().__init__(
            f'the snapshot cannot encode {object_type} {object_id} field {field}: {why} '
            '(netbox-plugin/unicop/snapshot.py STRING_TYPES lists the types it encodes)'
        )


# Non-JSON values given as str(value): each type's str() is deterministic and is the form the hash has
# always had for it (json.dumps(default=str) before the encoder was explicit).
STRING_TYPES = (
    decimal.Decimal,
    datetime.date,  # and datetime.datetime
    datetime.time,
    datetime.timedelta,
    uuid.UUID,
    IPNetwork,
    IPAddress,
    IPRange,
    EUI,
    ipaddress.IPv4Address,
    ipaddress.IPv6Address,
    ipaddress.IPv4Network,
    ipaddress.IPv6Network,
    ipaddress.IPv4Interface,
    ipaddress.IPv6Interface,
    Range,
    zoneinfo.ZoneInfo,
)


def _pytz_zone():
    try:
        import pytz
    except ImportError:
        return ()
    return (pytz.tzinfo.BaseTzInfo, type(pytz.utc))


STRING_TYPES += _pytz_zone()


def encode_value(value, object_type, object_id, field):
    """The JSON form of one field value (see the module's docstring); SnapshotUnencodable for a value
    with none."""

    def encode(v):
        if v is None or isinstance(v, (bool, int, str)):
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                raise SnapshotUnencodable(object_type, object_id, field, v, f'{v} is not a JSON number')
            return v
        if isinstance(v, (list, tuple)):
            return [encode(x) for x in v]
        if isinstance(v, dict):
            return {str(k): encode(x) for k, x in v.items()}
        if isinstance(v, STRING_TYPES):
            return str(v)
        if isinstance(v, (bytes, bytearray, memoryview)):
            return base64.b64encode(bytes(v)).decode('ascii')
        raise SnapshotUnencodable(object_type, object_id, field, v)

    return encode(value)


def canonical_bytes(value):
    return json.dumps(value, sort_keys=True, separators=(',', ':'), ensure_ascii=False, default=str).encode(
        'utf-8'
    )


def snapshot_hash(value):
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def _snapshot_fields(model):
    out = []
    for f in model._meta.concrete_fields:
        if f.name in VOLATILE_FIELDS or f.name.startswith('_') or isinstance(f, CounterCacheField):
            continue
        out.append(f)
    return out


def serialize_objects(model, queryset, seen=None):
    """Plain, JSON-ready dicts for every object of `queryset` (a fixed number of queries). `seen`, when
    given (model -> set of ids), collects every object the dicts show: the objects, those their foreign
    keys name, their tags."""
    fields = _snapshot_fields(model)
    rows = list(queryset.order_by('pk').values(*[f.attname for f in fields]))
    if not rows:
        return []
    object_type = model._meta.label_lower
    pk_name = model._meta.pk.attname
    if seen is not None:
        seen[model].update(r[pk_name] for r in rows)

    # Foreign keys: one query per target model, for the labels of the ids present.
    labels = {}
    for f in fields:
        if not f.is_relation:
            continue
        ids = {r[f.attname] for r in rows if r[f.attname] is not None}
        target = f.related_model
        if seen is not None and ids and target is not ContentType:
            seen[target].update(ids)
        if not ids:
            labels[f.attname] = {}
        elif target is ContentType:
            labels[f.attname] = {
                ct.pk: f'{ct.app_label}.{ct.model}' for ct in ContentType.objects.filter(pk__in=ids)
            }
        else:
            names = [n for n in LABEL_FIELDS if any(x.name == n for x in target._meta.concrete_fields)]
            labels[f.attname] = {
                r['pk']: {
                    'id': r['pk'],
                    **{n: encode_value(r[n], target._meta.label_lower, r['pk'], n) for n in names},
                }
                for r in target._base_manager.filter(pk__in=ids).values('pk', *names)
            }

    tags = defaultdict(list)
    if hasattr(model, 'tags'):
        ct = ContentType.objects.get_for_model(model)
        for object_id, tag_id, slug in TaggedItem.objects.filter(
            content_type=ct, object_id__in=[r[pk_name] for r in rows]
        ).values_list('object_id', 'tag_id', 'tag__slug'):
            tags[object_id].append(slug)
            if seen is not None:
                seen[Tag].add(tag_id)

    out = []
    for r in rows:
        item = {'object_type': object_type}
        for f in fields:
            value = r[f.attname]
            name = 'custom_fields' if f.name == 'custom_field_data' else f.name
            if f.is_relation and value is not None:
                value = labels[f.attname].get(value, {'id': value})
            item[name] = encode_value(value, object_type, r[pk_name], name)
        if hasattr(model, 'tags'):
            item['tags'] = sorted(tags.get(r[pk_name], []))
        out.append(item)
    return out


def build_snapshot(root, seen=None):
    kind = catalogue()[root.kind]
    anchor_qs = kind.anchor_model._base_manager.filter(pk=root.anchor_id)
    anchors = serialize_objects(kind.anchor_model, anchor_qs, seen)
    if not anchors:
        raise LookupError(f'anchor of {root.key} does not exist')
    anchor = anchors[0]
    anchor_obj = anchor_qs.get()
    members = []
    for rule in kind.members:
        members.extend(serialize_objects(rule.model, rule.relation.members_of(anchor_obj), seen))
    members.sort(key=lambda m: (m['object_type'], m['id']))
    return {'root': {'kind': root.kind, 'key': root.key, 'anchor': anchor}, 'members': members}


@contextmanager
def repeatable_read():
    """One REPEATABLE READ READ ONLY transaction: every read inside sees the same committed state. Inside
    a caller's transaction (tests), the caller's transaction is used."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY')
        yield


def snapshot_models():
    """Every model a snapshot of the catalogue's kinds can show (the models `read_snapshot` checks a
    viewer's permissions on): anchors, members, the models their foreign keys name, tags. The account
    UNICOP reads snapshots with needs `view` on these (deploy/netbox/accounts.py grants it)."""
    models = {Tag}
    for kind in catalogue().kinds.values():
        for model in (kind.anchor_model, *(rule.model for rule in kind.members)):
            models.add(model)
            models.update(
                f.related_model
                for f in _snapshot_fields(model)
                if f.is_relation and f.related_model is not ContentType
            )
    return models


def hides_any(user, seen):
    """Whether `user`'s NetBox view permissions hide any of `seen` (model -> ids). No query for a superuser,
    an exempt model or a permission without constraints (`restrict` then returns the queryset itself);
    two per model otherwise. Models outside NetBox's object permissions (no `restrict`) hide nothing."""
    for model, ids in seen.items():
        queryset = model._default_manager.filter(pk__in=ids)
        if not ids or not hasattr(queryset, 'restrict'):
            continue
        visible = queryset.restrict(user, 'view')
        if visible is not queryset and visible.count() != queryset.count():
            return True
    return False


def read_snapshot(root, viewer=None):
    """(snapshot, hash) read in one REPEATABLE READ transaction (or the caller's, if already in one).
    With `viewer` (a NetBox user), raises SnapshotHidden when the snapshot holds an object that user
    may not view."""
    with repeatable_read():
        seen = defaultdict(set) if viewer is not None else None
        snap = build_snapshot(root, seen)
        if viewer is not None and hides_any(viewer, seen):
            raise SnapshotHidden(root.key)
    return snap, snapshot_hash(snap)


def read_hash_now(root, viewer=None):
    """(hash, generation, settled) of the root read now, in one REPEATABLE READ transaction, nothing
    stored and no snapshot given: what the reconciler compares, just before a launch, with what its
    lease's answer carried (docs/decisions/0067). Always computed from the data: a stored current hash
    cannot show an edit that bypassed NetBox, which is what the comparison looks for. `settled` is false
    while NetBox rewrites custom field data in a background job (a field provisioning or being purged,
    committed in batches with no signal per object): hashes may then move with no generation. With
    `viewer`, refused (SnapshotHidden) as read_snapshot refuses it."""
    from extras.choices import CustomFieldStatusChoices
    from extras.models import CustomField

    from .models import Root

    with repeatable_read():
        generation = Root.objects.filter(pk=root.pk).values_list('hash_generation', flat=True).get()
        seen = defaultdict(set) if viewer is not None else None
        snap = build_snapshot(root, seen)
        if viewer is not None and hides_any(viewer, seen):
            raise SnapshotHidden(root.key)
        settled = not CustomField.objects.exclude(status=CustomFieldStatusChoices.STATUS_ACTIVE).exists()
    return snapshot_hash(snap), generation, settled
