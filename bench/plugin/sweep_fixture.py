"""Sweep benchmark data inside NetBox (run by bench/plugin/sweep.ts through `netbox shell`): N sites named
`unicop-sweep-*` and their N site roots, made in bulk through the ORM (bulk_create: no signals, no change
log, no search index, no webhooks). Every root has a current hash computed and stored (not stale), equal
to its last reconciled hash except for the first D roots, which have drifted (their last reconciled hash
differs). The hashes are placeholders (sha256 of the key), not the sites' snapshot hashes: a sweep
compares stored hashes and computes none, and these roots are never reconciled (the benchmark sends
the sweep's intents to a topic of its own). UNICOP_BENCH_CLEANUP=1 removes the sites and roots again.

Output: one line `BENCH sweep_fixture roots=N drifted=D seconds=S`."""

import hashlib
import os
import time

from dcim.models import Site
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone

from unicop.models import Root

ROOTS = int(os.environ.get('UNICOP_BENCH_SWEEP_ROOTS', '100000'))
DRIFTED = int(os.environ.get('UNICOP_BENCH_SWEEP_DRIFTED', '1000'))
TAG = 'unicop-sweep'
BATCH = 5000


def bench_site_ids():
    return list(Site.objects.filter(slug__startswith=f'{TAG}-').values_list('pk', flat=True))


DRIFTED_HASH = hashlib.sha256(b'drifted').hexdigest()  # the drifted roots' last reconciled hash


t = time.monotonic()
if os.environ.get('UNICOP_BENCH_CLEANUP'):
    ids = bench_site_ids()
    for i in range(0, len(ids), BATCH):
        chunk = ids[i : i + BATCH]
        # Made without signals, runs or tags: raw deletes are exact, and minutes faster than NetBox's
        # per-object cascade checks.
        Root.objects.filter(kind='site', anchor_id__in=chunk)._raw_delete(Root.objects.db)
        Site.objects.filter(pk__in=chunk)._raw_delete(Site.objects.db)
    print(f'BENCH sweep_cleanup removed={len(ids)} seconds={time.monotonic() - t:.1f}')
else:
    have = Site.objects.filter(slug__startswith=f'{TAG}-').count()
    for start in range(have, ROOTS, BATCH):
        Site.objects.bulk_create(
            [Site(name=f'{TAG}-{i}', slug=f'{TAG}-{i}') for i in range(start, min(ROOTS, start + BATCH))]
        )
    ct = ContentType.objects.get_for_model(Site)
    ids = sorted(bench_site_ids())
    drifted = set(ids[:DRIFTED])
    rooted = set(Root.objects.filter(kind='site', anchor_id__in=ids).values_list('anchor_id', flat=True))
    missing = [i for i in ids if i not in rooted]
    now = timezone.now()

    def digest(key):
        return hashlib.sha256(key.encode()).hexdigest()

    # Made fresh (not stale, so the stack's unicop_hashes leaves them alone) and reconciled at their
    # placeholder hash, the first D drifted.
    for n in range(0, len(missing), BATCH):
        Root.objects.bulk_create(
            [
                Root(
                    kind='site',
                    anchor_type=ct,
                    anchor_id=a,
                    key=f'site/{a}',
                    current_hash=digest(f'site/{a}'),
                    last_reconciled_hash=DRIFTED_HASH if a in drifted else digest(f'site/{a}'),
                    hash_dirty=False,
                    hash_computed_at=now,
                )
                for a in missing[n : n + BATCH]
            ]
        )
    if rooted:
        # A kept fixture, swept or marked stale before: back to the same state.
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE unicop_root SET current_hash = encode(sha256(key::bytea), 'hex'),"
                ' last_reconciled_hash = CASE WHEN anchor_id = ANY(%s) THEN %s'
                " ELSE encode(sha256(key::bytea), 'hex') END,"
                ' hash_dirty = false, hash_stale_since = NULL, hash_computed_at = now()'
                " WHERE kind = 'site' AND anchor_id = ANY(%s)",
                [sorted(drifted), DRIFTED_HASH, sorted(rooted)],
            )
    # As autovacuum would have by then: the sweep measures the table in its steady state.
    with connection.cursor() as cursor:
        cursor.execute('VACUUM (ANALYZE) unicop_root')
    seconds = time.monotonic() - t
    print(f'BENCH sweep_fixture roots={len(ids)} drifted={len(drifted)} seconds={seconds:.1f}')
