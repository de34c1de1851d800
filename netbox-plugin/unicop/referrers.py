"""Roots that show an object they do not hold: a foreign key's target or a tag (docs/decisions/0067).

A snapshot (snapshot.py) shows, for each foreign key of the anchor and its members, the target's
`name`, `slug` or `address`, and each object's tag slugs. Renaming such a target — a tenant, a device
type's slug, a tag — or deleting it (its referrers' keys are set to NULL by the database's collector,
with no save signal) changes the hash of every root whose anchor or members point at it, though the
target itself belongs to no root. Those roots are marked stale here, in the transaction of the change,
exactly as roots.mark_dirty marks the roots of a member: the generation moves with the hash, so the
fail-safe's `snapshot_changed` trigger (a hash that moved with no generation) stays for edits that
bypass NetBox.

One UPDATE of the roots per change, whatever the number of roots or referrers: its WHERE names, for
each kind, the anchors whose own row or members point at the target (subqueries PostgreSQL answers
through the foreign keys' indexes). A change to a target that leaves its shown fields alone costs one
read of those fields (pre_save) and nothing else.

A custom field's deletion, rename, or object types added (with a default) or removed rewrites
`custom_field_data` of every object of its types with a queryset update (no save signal): every root is
marked stale (one UPDATE; rare, and the background recompute only rereads hashes).
"""

from functools import cache

from django.contrib.contenttypes.models import ContentType
from django.db.models import F, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, Now
from django.db.models.signals import post_delete
from extras.models import Tag

from .catalogue import catalogue
from .models import Root
from .snapshot import LABEL_FIELDS, _snapshot_fields

_PRE_LABELS = '_unicop_pre_labels'


def _holders():
    """(kind, model, anchors_of) for each anchor and member model of each kind: anchors_of(queryset of
    that model) is a subquery of the ids of the anchors those objects belong to."""
    out = []
    for kind in catalogue().kinds.values():
        out.append((kind, kind.anchor_model, lambda qs: qs.values('pk')))
        for rule in kind.members:
            out.append((kind, rule.model, _anchors_of(rule)))
    return out


def _anchors_of(rule):
    relation = rule.relation
    if relation.name == 'fk':
        return lambda qs: qs.values(f'{relation.field_name}_id')
    # prefix_contains: the prefixes of the same VRF holding the address (both bounds of a range).
    if relation.is_range:
        fields, match = (
            ('vrf_id', 'start_address', 'end_address'),
            ('p.prefix >>= host(m.start_address)::inet AND p.prefix >>= host(m.end_address)::inet'),
        )
    else:
        fields, match = ('vrf_id', 'address'), 'p.prefix >>= host(m.address)::inet'

    def anchors_of(qs):
        # The ORM's own compiled query and constant text; every value goes as a parameter.
        sql, params = qs.values(*fields).query.sql_with_params()
        join = f'SELECT p.id FROM ipam_prefix p JOIN ({sql}) m ON p.vrf_id IS NOT DISTINCT FROM m.vrf_id'  # noqa: S608
        return RawSQL(f'{join} AND {match}', params)  # noqa: S611

    return anchors_of


@cache
def plan(target):
    """For a target model: [(kind name, holder model, anchors_of, lookup)] where `lookup` is the holder's
    filter naming the target (a foreign key's attname, or `tags` for Tag). Empty: no snapshot shows it."""
    out = []
    for kind, model, anchors_of in _holders():
        if target is Tag:
            if hasattr(model, 'tags'):
                out.append((kind.name, model, anchors_of, 'tags'))
            continue
        for f in _snapshot_fields(model):
            if f.is_relation and f.related_model is target:
                out.append((kind.name, model, anchors_of, f.attname))
    return out


def shown_fields(target):
    """The target's fields a snapshot shows: its `name`, `slug`, `address` (for Tag: its slug)."""
    if target is Tag:
        return ('slug',)
    return tuple(n for n in LABEL_FIELDS if any(x.name == n for x in target._meta.concrete_fields))


def target_models():
    """Every model a snapshot shows as a foreign key's target or as tags, with its shown fields."""
    models = {Tag}
    for _kind, model, _a in _holders():
        models.update(
            f.related_model
            for f in _snapshot_fields(model)
            if f.is_relation and f.related_model is not ContentType
        )
    return sorted((m for m in models if plan(m) and shown_fields(m)), key=lambda m: m._meta.label_lower)


def mark_referrers(target, pk):
    """In the caller's transaction: the roots whose anchor or members point at `target` object `pk` are
    stale (their generation moves). One UPDATE; returns the number of roots marked."""
    where = Q()
    for kind_name, model, anchors_of, lookup in plan(target):
        where |= Q(kind=kind_name, anchor_id__in=anchors_of(model._base_manager.filter(**{lookup: pk})))
    if not where:
        return 0
    return Root.objects.filter(where).update(
        hash_dirty=True,
        hash_generation=F('hash_generation') + 1,
        hash_stale_since=Coalesce(F('hash_stale_since'), Now()),
    )


def mark_every_root():
    """Every root is stale (a custom field rewrote objects' custom_field_data). One UPDATE."""
    return Root.objects.update(
        hash_dirty=True,
        hash_generation=F('hash_generation') + 1,
        hash_stale_since=Coalesce(F('hash_stale_since'), Now()),
    )


def remember_labels(sender, instance, raw=False, **kwargs):
    """pre_save: the target's shown fields as stored, to compare after the save."""
    if raw or instance.pk is None:
        return
    stored = sender._base_manager.filter(pk=instance.pk).values(*shown_fields(sender)).first()
    setattr(instance, _PRE_LABELS, stored)


def on_target_saved(sender, instance, created=False, raw=False, **kwargs):
    """post_save: a shown field changed (a rename) marks the roots that show it. A new target has no
    referrers yet."""
    before = getattr(instance, _PRE_LABELS, None)
    if raw or created or before is None:
        return
    if any(str(before[n]) != str(getattr(instance, n)) for n in before):
        mark_referrers(sender, instance.pk)


def on_target_deleting(sender, instance, **kwargs):
    """pre_delete: the referrers are still there (the collector nulls their keys or deletes them after
    this signal, in the same transaction); a refused delete (PROTECT) rolls the mark back with it."""
    mark_referrers(sender, instance.pk)


def on_custom_field_changed(sender, instance=None, raw=False, action=None, created=False, **kwargs):
    """When NetBox rewrites objects' custom_field_data for a custom field, every root is marked: the
    field's data removed (deleted, object types removed), renamed (`instance._name`, the name NetBox
    kept at load, as extras/signals.py handle_cf_renamed compares), or its default written (object types
    added to a field with a default). Any other save of a field rewrites nothing and marks nothing."""
    if raw:
        return
    if action is not None:  # m2m_changed of object_types: after the change
        if action in ('post_remove', 'post_clear') or (action == 'post_add' and instance.default is not None):
            mark_every_root()
        return
    if kwargs.get('signal') is post_delete or (
        not created and instance.name != getattr(instance, '_name', None)
    ):
        mark_every_root()
