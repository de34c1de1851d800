"""Creates the missing root rows for existing anchor objects of every declared kind, removes rows whose
anchor is gone, and recomputes every stale current hash (with --rehash: every root's)."""

from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand
from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from unicop.catalogue import catalogue
from unicop.hashes import recompute_all_stale
from unicop.models import Root

BATCH = 1000  # rows per bulk_create


class Command(BaseCommand):
    help = 'Create root rows for existing anchors of every declared root kind (idempotent).'

    def add_arguments(self, parser):
        parser.add_argument('--rehash', action='store_true', help='recompute every current hash')

    def handle(self, *args, rehash=False, **options):
        now = timezone.now()
        for kind in catalogue().kinds.values():
            ct = ContentType.objects.get_for_model(kind.anchor_model)
            anchor_ids = set(kind.anchor_model.objects.values_list('pk', flat=True))
            existing = set(Root.objects.filter(kind=kind.name).values_list('anchor_id', flat=True))
            missing = sorted(anchor_ids - existing)
            Root.objects.bulk_create(
                [
                    Root(
                        kind=kind.name, anchor_type=ct, anchor_id=a, key=kind.key_for(a), hash_stale_since=now
                    )
                    for a in missing
                ],
                batch_size=BATCH,
                ignore_conflicts=True,
            )
            gone = existing - anchor_ids
            if gone:
                Root.objects.filter(kind=kind.name, anchor_id__in=gone).delete()
            self.stdout.write(
                f'{kind.name}: {len(anchor_ids)} anchors, {len(missing)} roots created, {len(gone)} removed'
            )
        if rehash:
            Root.objects.update(
                hash_dirty=True,
                hash_generation=F('hash_generation') + 1,
                hash_stale_since=Coalesce(F('hash_stale_since'), Now()),
            )
        stored, failed = recompute_all_stale()
        for root_id, error in failed.items():
            self.stderr.write(f'root {root_id}: snapshot failed, left stale: {error}')
        self.stdout.write(f'{stored} current hashes recomputed')
