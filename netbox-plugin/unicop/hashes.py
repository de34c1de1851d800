"""The background recompute of stale current hashes (docs/decisions/0043).

A change only marks the roots it touches stale, in its own transaction (roots.mark_dirty: one UPDATE of
the roots' rows). Here, outside any request, the oldest stale roots are taken in batches and each one's
hash is read in one REPEATABLE READ snapshot together with the root's `hash_generation`, then stored
with a compare-and-set on that generation (roots.store_hash): a change committed after the read marked
the root again and bumped the generation, so the store is refused and the root stays stale for the next
pass. Nothing is lost if the process dies: the stale mark is in the database, committed with the change.

Run by `netbox unicop_hashes` (a process beside NetBox's RQ worker, so that snapshots never wait in
front of webhooks), and by `unicop_sync_roots`.
"""

from dataclasses import dataclass, field

from django.db import OperationalError, connection, transaction

from .models import Root
from .roots import store_hash
from .snapshot import build_snapshot, repeatable_read, snapshot_hash

BATCH = 100  # stale roots taken per pass
# How long a store may wait for the root's row: a transaction holding it is writing the root (a change
# marking it again, a lease); rather than queue behind it, the root is left for the next pass.
LOCK_TIMEOUT = '2s'


@dataclass
class Pass:
    taken: int = 0  # stale roots taken
    stored: int = 0  # hashes stored
    changed: int = 0  # changed again while read: still stale, taken again next pass
    failed: list = field(default_factory=list)  # (root id, error): left stale


def stale_root_ids(limit, exclude=()):
    """The oldest stale roots' ids. Rows another transaction holds locked are skipped, not waited for."""
    with transaction.atomic():
        qs = Root.objects.filter(hash_dirty=True).exclude(pk__in=list(exclude))
        return list(
            qs.order_by('hash_stale_since', 'pk')
            .select_for_update(skip_locked=True)
            .values_list('pk', flat=True)[:limit]
        )


def read_current_hash(root_id):
    """(generation, hash) of a stale root, both read in one snapshot; None if it is no longer stale."""
    with repeatable_read():
        root = Root.objects.filter(pk=root_id, hash_dirty=True).first()
        if root is None:
            return None
        return root.hash_generation, snapshot_hash(build_snapshot(root))


def recompute(root_id):
    """Reads and stores one stale root's hash: 'stored', 'changed' (marked again meanwhile, or its row
    was busy) or 'fresh' (no longer stale)."""
    read = read_current_hash(root_id)
    if read is None:
        return 'fresh'
    generation, digest = read
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            return 'stored' if store_hash(root_id, generation, digest) else 'changed'
    except OperationalError:
        if connection.in_atomic_block and connection.needs_rollback:
            raise  # inside a caller's transaction that cannot go on: theirs to handle
        return 'changed'


def recompute_stale(limit=BATCH, exclude=()):
    """One pass over the oldest stale roots (at most `limit`). A root whose snapshot cannot be read
    (anchor gone, a broken kind) is reported in `failed` and left stale; the caller excludes it."""
    result = Pass()
    for root_id in stale_root_ids(limit, exclude):
        result.taken += 1
        try:
            outcome = recompute(root_id)
        except OperationalError:
            raise  # the database itself: the caller waits and reconnects
        except Exception as exc:
            result.failed.append((root_id, f'{exc.__class__.__name__}: {exc}'))
            continue
        if outcome == 'stored':
            result.stored += 1
        elif outcome == 'changed':
            result.changed += 1
    return result


def recompute_all_stale(limit=BATCH):
    """Passes until no stale root is left but those that failed; (stored, failed ids)."""
    stored, failed = 0, {}
    while True:
        result = recompute_stale(limit, exclude=failed)
        stored += result.stored
        failed.update(result.failed)
        if result.taken == 0:
            return stored, failed
