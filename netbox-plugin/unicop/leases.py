"""Root leases with fencing tokens, and the fence on run records (DESIGN.md §2 Lease, §3.2).

Every operation locks the root row (SELECT … FOR UPDATE) for its transaction, so two acquirers are
serialised by PostgreSQL and the second sees the first's lease. `highest_token` is persisted on the
root and only ever incremented: a token is never issued twice, also after release or expiry.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import RolloutMember, Root

MAX_TTL_SECONDS = 24 * 3600


class LeaseConflict(Exception):
    """409: the lease is held by someone else, expired, or the token is stale (carries the holder)."""

    status_code = 409

    def __init__(self, detail, root, held_by=None):
        super().__init__(detail)
        self.detail = detail
        self.holder = root.lease_holder or None
        self.expires_at = root.lease_expires_at if root.lease_token else None
        self.highest_token = root.highest_token
        self.frozen = root.frozen
        self.held_by = held_by

    def body(self):
        return {
            'detail': self.detail,
            'holder': self.holder,
            'expires_at': self.expires_at.isoformat() if self.expires_at else None,
            'highest_token': self.highest_token,
            'frozen': self.frozen,
            'held_by': self.held_by,
        }


def _locked(root_id):
    return Root.objects.select_for_update().get(pk=root_id)


def _save_lease(root, **fields):
    Root.objects.filter(pk=root.pk).update(**fields)
    for name, value in fields.items():
        setattr(root, name, value)
    return root


def acquire(root_id, holder, ttl_seconds):
    with transaction.atomic():
        root = _locked(root_id)
        now = timezone.now()
        if root.lease_live(now):
            raise LeaseConflict(f'root {root.key} is leased by {root.lease_holder}', root)
        if root.frozen:
            # The human override is enforced here, not left to each worker (DESIGN.md §3.8).
            raise LeaseConflict(f'root {root.key} is frozen: {root.frozen_reason}', root)
        if (rollout := root.held_by) is not None:
            # Held in a rollout wave not opened yet (docs/decisions/0061): no intent launches it before its
            # wave; the refusal is counted on the member (parked, never silently dropped), so it is raised
            # after the transaction commits.
            RolloutMember.objects.filter(rollout=rollout, root=root).update(superseded=F('superseded') + 1)
            held = LeaseConflict(
                f'root {root.key} is held by rollout {rollout.rollout_id} '
                f'(wave {rollout.current_wave + 1} of {len(rollout.waves)} open, state {rollout.state})',
                root,
                held_by=rollout.rollout_id,
            )
        else:
            held = None
        if held is None:
            token = root.highest_token + 1
            return _save_lease(
                root,
                lease_holder=holder,
                lease_token=token,
                highest_token=token,
                lease_expires_at=now + timedelta(seconds=ttl_seconds),
            )
    raise held


def _check_token(root, token, now):
    if root.lease_token != token:
        if root.lease_live(now):
            raise LeaseConflict(
                f'token {token} does not hold root {root.key}: {root.lease_holder} does', root
            )
        raise LeaseConflict(f'token {token} does not hold root {root.key}: no live lease', root)
    if not root.lease_live(now):
        raise LeaseConflict(f'the lease of token {token} on root {root.key} expired', root)


def renew(root_id, token, ttl_seconds):
    with transaction.atomic():
        root = _locked(root_id)
        now = timezone.now()
        _check_token(root, token, now)
        return _save_lease(root, lease_expires_at=now + timedelta(seconds=ttl_seconds))


def release(root_id, token):
    with transaction.atomic():
        root = _locked(root_id)
        _check_token(root, token, timezone.now())
        return _save_lease(root, lease_holder='', lease_token=None, lease_expires_at=None)


def check_fence(root, token):
    """The fence on NetBox's side: a write carrying a token lower than the highest issued is refused.
    Call with the root row locked. A token that was never issued is refused as well."""
    if token < root.highest_token:
        raise LeaseConflict(
            f'stale fencing token {token} for root {root.key}: token {root.highest_token} was issued since',
            root,
        )
    if token > root.highest_token:
        raise LeaseConflict(
            f'fencing token {token} for root {root.key} was never issued (highest {root.highest_token})', root
        )
