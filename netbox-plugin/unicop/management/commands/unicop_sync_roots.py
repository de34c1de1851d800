"""Creates the missing root rows for existing anchor objects of every declared kind, removes rows whose
anchor is gone, and (with --rehash) recomputes every root's current hash."""

from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand

from unicop.catalogue import catalogue
from unicop.models import Root
from unicop.roots import refresh_hashes

BATCH = 1000  # rows per bulk_create


class Command(BaseCommand):
    help = 'Create root rows for existing anchors of every declared root kind (idempotent).'

    def add_arguments(self, parser):
        parser.add_argument('--rehash', action='store_true', help='recompute every current hash')

    def handle(self, *args, rehash=False, **options):
        for kind in catalogue().kinds.values():
            ct = ContentType.objects.get_for_model(kind.anchor_model)
            anchor_ids = set(kind.anchor_model.objects.values_list('pk', flat=True))
            existing = set(Root.objects.filter(kind=kind.name).values_list('anchor_id', flat=True))
            missing = sorted(anchor_ids - existing)
            Root.objects.bulk_create(
                [Root(kind=kind.name, anchor_type=ct, anchor_id=a, key=kind.key_for(a)) for a in missing],
                batch_size=BATCH,
                ignore_conflicts=True,
            )
            gone = existing - anchor_ids
            if gone:
                Root.objects.filter(kind=kind.name, anchor_id__in=gone).delete()
            self.stdout.write(
                f'{kind.name}: {len(anchor_ids)} anchors, {len(missing)} roots created, {len(gone)} removed'
            )
        qs = Root.objects.all() if rehash else Root.objects.filter(hash_dirty=True)
        count = qs.count()
        refresh_hashes(qs.iterator(chunk_size=BATCH))
        self.stdout.write(f'{count} current hashes recomputed')
