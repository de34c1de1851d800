"""Signal handlers: a root row for every new anchor, and dirty current hashes for every change that
touches a root (docs/decisions/0021) — also a change to an object a root only shows: a foreign key's
target, a tag, a custom field (referrers.py, docs/decisions/0067). Connected in UnicopConfig.ready()."""

from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from extras.models import CustomField

from . import referrers
from .catalogue import catalogue
from .models import Root
from .roots import ensure_root, mark_dirty, root_keys_for_instance

_PRE_STATE = '_unicop_pre_state'


def _db_fields(model):
    names = set()
    for _kind, rule in catalogue().by_member.get(model._meta.label_lower, ()):
        names.update(rule.relation.db_fields())
    return sorted(names)


def remember_pre_state(sender, instance, raw=False, **kwargs):
    """Before an update, the member's stored membership fields: a move touches the old root as well."""
    if raw or instance.pk is None:
        return
    fields = _db_fields(sender)
    if fields:
        setattr(instance, _PRE_STATE, sender._base_manager.filter(pk=instance.pk).values(*fields).first())


def on_saved(sender, instance, created=False, raw=False, **kwargs):
    if raw:
        return
    if created:
        for kind in catalogue().by_anchor.get(sender._meta.label_lower, ()):
            ensure_root(kind, instance)
    mark_dirty(root_keys_for_instance(instance, getattr(instance, _PRE_STATE, None)))


def on_deleted(sender, instance, **kwargs):
    label = sender._meta.label_lower
    for kind in catalogue().by_anchor.get(label, ()):
        Root.objects.filter(key=kind.key_for(instance.pk)).delete()
    mark_dirty(root_keys_for_instance(instance))


def connect():
    for label in catalogue().covered_types():
        model = catalogue().by_anchor.get(label, [None])[0]
        model = model.anchor_model if model else catalogue().by_member[label][0][1].model
        uid = f'unicop:{label}'
        pre_save.connect(remember_pre_state, sender=model, dispatch_uid=f'{uid}:pre')
        post_save.connect(on_saved, sender=model, dispatch_uid=f'{uid}:post')
        post_delete.connect(on_deleted, sender=model, dispatch_uid=f'{uid}:delete')
    # What a snapshot shows without holding it (docs/decisions/0067): renamed or deleted targets, tags.
    for model in referrers.target_models():
        uid = f'unicop:shown:{model._meta.label_lower}'
        pre_save.connect(referrers.remember_labels, sender=model, dispatch_uid=f'{uid}:pre')
        post_save.connect(referrers.on_target_saved, sender=model, dispatch_uid=f'{uid}:post')
        pre_delete.connect(referrers.on_target_deleting, sender=model, dispatch_uid=f'{uid}:delete')
    post_save.connect(referrers.on_custom_field_changed, sender=CustomField, dispatch_uid='unicop:cf:post')
    post_delete.connect(
        referrers.on_custom_field_changed, sender=CustomField, dispatch_uid='unicop:cf:delete'
    )
    m2m_changed.connect(
        referrers.on_custom_field_changed,
        sender=CustomField.object_types.through,
        dispatch_uid='unicop:cf:types',
    )
