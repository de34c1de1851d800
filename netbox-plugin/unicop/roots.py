"""Which roots an object belongs to (the resolver), root rows for anchors, and the maintained current hash.

The resolver answers from plain field dicts, so the same code serves the database's current row, a
webhook's `data` (REST shape) and a changelog `prechange` snapshot (ids). The current hash of a root is
marked stale in the transaction of the change (so a change is never hidden by a hash not yet
recomputed) and recomputed in the background (hashes.py, docs/decisions/0043), stored with a
compare-and-set on `hash_generation` (so a slow recomputation never overwrites a newer change's mark).
"""

from django.contrib.contenttypes.models import ContentType
from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from .catalogue import InvalidPolicy, catalogue
from .models import Root
from .policy_overrides import may_loosen, merge_override
from .snapshot import SnapshotUnencodable, read_snapshot

EVENTS = ('created', 'updated', 'deleted')


def _root_keys_each(objects):
    """Root keys of each object, given as (type `app.model`, id, its known states: dicts of fields).
    One call of each member rule's relation for all the objects of its type: the queries are bounded
    by the catalogue, not by the number of objects (docs/decisions/0046)."""
    cat = catalogue()
    keys = [set() for _ in objects]
    by_type = {}
    for i, (object_type, object_id, states) in enumerate(objects):
        if object_id is not None:
            keys[i].update(kind.key_for(object_id) for kind in cat.by_anchor.get(object_type, ()))
        by_type.setdefault(object_type, []).extend((i, state) for state in states if state)
    for object_type, states in by_type.items():
        for kind, rule in cat.by_member.get(object_type, ()):
            anchor_ids = rule.relation.anchor_ids_for_each([state for _, state in states])
            for (i, _), ids in zip(states, anchor_ids, strict=True):
                keys[i].update(kind.key_for(a) for a in ids)
    return keys


def root_keys_for_states(object_type, object_id, states):
    """Root keys of an object (type `app.model`, id) given its known states (dicts of fields)."""
    return _root_keys_each([(object_type, object_id, states)])[0]


def _current_rows(cat, changes):
    """{object type: {id: fields}}: the database's row of each changed member object not deleted, read
    in one query per object type (only the fields its rules read)."""
    ids = {}
    for change in changes:
        object_type = change['object_type'].lower()
        if change['event'] != 'deleted' and cat.by_member.get(object_type):
            ids.setdefault(object_type, set()).add(change.get('object_id'))
    rows = {}
    for object_type, object_ids in ids.items():
        rules = cat.by_member[object_type]
        names = {'pk'}
        for _kind, rule in rules:
            names.update(rule.relation.db_fields())
        model = rules[0][1].model
        found = model._base_manager.filter(pk__in=sorted(object_ids)).values(*sorted(names))
        rows[object_type] = {row['pk']: row for row in found}
    return rows


def resolve_changes(changes):
    """Root keys each webhook change touches (docs/plugin-api.md, Resolver), sorted, in the order of the
    changes. A created or updated member is resolved from its row now (a move also touches what its
    prechange says); a deleted one from what the webhook carried. The batch costs one query per member
    object type and one per prefix_contains rule, whatever its size (docs/decisions/0046)."""
    cat = catalogue()
    current = _current_rows(cat, changes)
    objects = []
    for change in changes:
        object_type = change['object_type'].lower()
        object_id = change.get('object_id')
        if not cat.by_member.get(object_type) and object_type not in cat.by_anchor:
            objects.append((object_type, None, []))
            continue
        if change['event'] != 'deleted' and object_type in current:
            row = current[object_type].get(object_id)
            # Gone since the event (deleted meanwhile): fall back to what the webhook carried.
            states = [row if row is not None else (change.get('postchange') or change.get('data'))]
        else:
            states = [change.get('data')]
        states.append(change.get('prechange'))
        if change['event'] == 'deleted':
            states.append(change.get('postchange'))
        objects.append((object_type, object_id, states))
    return [sorted(keys) for keys in _root_keys_each(objects)]


def root_keys_for_instance(instance, before=None):
    """Root keys of a saved or deleted model instance, plus those of its state `before` the change."""
    object_type = instance._meta.label_lower
    rules = catalogue().by_member.get(object_type, ())
    state = None
    if rules:
        state = {}
        for _kind, rule in rules:
            for name in rule.relation.db_fields():
                state[name] = getattr(instance, name, None)
    return root_keys_for_states(object_type, instance.pk, [state, before])


def ensure_root(kind, anchor):
    root, _ = Root.objects.get_or_create(
        key=kind.key_for(anchor.pk),
        defaults={
            'kind': kind.name,
            'anchor_type': ContentType.objects.get_for_model(kind.anchor_model),
            'anchor_id': anchor.pk,
        },
    )
    return root


def mark_dirty(keys):
    """In the caller's transaction: the roots' current hashes are stale. One UPDATE of the roots' rows,
    nothing else: the background recompute (hashes.py) picks them up, oldest mark first. Further marks
    of a stale root keep its hash_stale_since and bump its generation."""
    if not keys:
        return
    Root.objects.filter(key__in=sorted(keys)).update(
        hash_dirty=True,
        hash_generation=F('hash_generation') + 1,
        hash_stale_since=Coalesce(F('hash_stale_since'), Now()),
    )


def store_hash(root_id, generation, digest):
    """Stores a freshly read hash unless a change marked the root stale again after `generation` was
    read (compare-and-set); True when stored."""
    return bool(
        Root.objects.filter(pk=root_id, hash_generation=generation).update(
            current_hash=digest, hash_dirty=False, hash_stale_since=None, hash_computed_at=timezone.now()
        )
    )


def current_snapshot(root, viewer=None):
    """The root's snapshot and hash, read now (the snapshot endpoint: the hash of what it returns).
    Self-healing: a hash that differs from the stored one, or a stale mark, is stored with a
    compare-and-set on the generation read before the snapshot, so a newer change's mark is never
    cleared by a slow read. With `viewer`, refused (SnapshotHidden) if that user may not view all of it."""
    generation = root.hash_generation
    snap, digest = read_snapshot(root, viewer)
    if root.current_hash != digest or root.hash_dirty:
        if store_hash(root.pk, generation, digest):
            root.hash_dirty = False
    root.current_hash = digest
    return snap, digest


def refresh_hash(root):
    """Recompute one root's current hash; store it unless a newer change marked it stale meanwhile."""
    return current_snapshot(root)[1]


def refresh_dirty(roots):
    """Recomputes the stale hashes of these roots now: only for a page a person looks at (one root in
    the UI), never for the API's listing (docs/decisions/0043)."""
    for root in roots:
        if root.hash_dirty:
            try:
                refresh_hash(root)
            except LookupError:
                continue  # the anchor went away meanwhile; its root row goes with it
            except SnapshotUnencodable:
                continue  # stays stale; the snapshot endpoint's 422 names the object and field


POLICY_FIELD = 'unicop_policy'  # the anchor's JSON custom field holding a root's policy overrides


def root_policy(root, kind=None):
    """(policy, error) of a root: its kind's policy with the anchor's `unicop_policy` keys over it,
    checked by catalogue.parse_policy and allowed only to tighten the kind's (policy_overrides.py; the
    served policy's `overridden` names the keys it set). An override that cannot be run gives (None,
    error naming the key): never the kind's policy in its place — the workers refuse the root's runs
    (failed, class template_misconfigured)."""
    kind = kind or catalogue().kinds.get(root.kind)
    if kind is None:
        return None, None
    anchor = root.anchor
    override = (anchor.custom_field_data or {}).get(POLICY_FIELD) if anchor is not None else None
    if override is None:
        return dict(kind.policy), None
    where = f'{root.key} {POLICY_FIELD}'
    if not isinstance(override, dict):
        return None, f'{where} must be a JSON object of policy keys, not {type(override).__name__}'
    try:
        # Tighten-only, key by key (policy_overrides.py, docs/decisions/0068).
        return merge_override(kind.policy, override, where, may_loosen()), None
    except InvalidPolicy as exc:
        return None, str(exc)


def ensure_policy_field():
    """Creates or updates the JSON custom field `unicop_policy` on every anchor type of the catalogue
    (idempotent; unicop_bootstrap and the command unicop_policy_field run it). Returns created, updated
    or unchanged."""
    from core.models import ObjectType
    from extras.models import CustomField

    wanted = {ObjectType.objects.get_for_model(kind.anchor_model).pk for kind in catalogue().kinds.values()}
    field, created = CustomField.objects.get_or_create(
        name=POLICY_FIELD,
        defaults={
            'type': 'json',
            'label': 'UNICOP policy',
            'description': "UNICOP: this root's policy keys over its kind's (docs/decisions/0062)",
            'required': False,
        },
    )
    if set(field.object_types.values_list('pk', flat=True)) == wanted and not created:
        return 'unchanged'
    field.object_types.set(wanted)
    return 'created' if created else 'updated'
