"""Freezing a root: the human override that keeps the reconciler off it (DESIGN.md §3.8).

A frozen root cannot be leased (leases.acquire refuses it with 409), so no run starts on it. Freezing
and unfreezing carry a reason, are change-logged on the root and journalled on it, by the REST API
(api/views.py) and the root's freeze form (views.py) alike.
"""

from django.db import transaction
from extras.models import JournalEntry


def set_frozen(root, frozen, reason, user):
    """Freeze or unfreeze `root` with a reason (may be empty to unfreeze), by `user`: one transaction
    that saves the root (change-logged, validated) and writes a journal entry on it."""
    verb = 'Frozen' if frozen else 'Unfrozen'
    with transaction.atomic():
        root.snapshot()
        root.frozen = frozen
        root.frozen_reason = reason if frozen else ''
        root._changelog_message = f'{verb}: {reason}' if reason else None
        root.full_clean()
        root.save()
        JournalEntry.objects.create(
            assigned_object=root,
            created_by=user if user.is_authenticated else None,
            kind='warning' if frozen else 'info',
            comments=f'{verb} by {user}: {reason or "(no reason given)"}',
        )
