"""Root rows follow their anchors: created when an anchor of a declared kind is created (signal), removed
with it; `unicop_sync_roots` creates the missing rows for anchors that existed before (idempotent) and
removes orphans; root status is derived (frozen wins over everything)."""

from io import StringIO

from django.core.management import call_command
from ipam.models import Prefix
from utilities.testing import TestCase

from unicop.models import Root

from .fixtures import make_site


class RootLifecycleTestCase(TestCase):
    def test_created_and_removed_with_anchor(self):
        site = make_site('Turin')
        root = Root.objects.get(key=f'site/{site.pk}')
        self.assertEqual((root.kind, root.anchor, root.highest_token), ('site', site, 0))
        site.delete()
        self.assertFalse(Root.objects.filter(key=f'site/{site.pk}').exists())

    def test_sync_roots_command(self):
        prefix = Prefix.objects.create(prefix='10.77.0.0/24')
        site = make_site('Genoa')
        Root.objects.all().delete()
        Root.objects.create(
            kind='site',
            anchor_type_id=Root._meta.get_field('anchor_type').related_model.objects.get_for_model(site).pk,
            anchor_id=999999,
            key='site/999999',
        )
        out = StringIO()
        call_command('unicop_sync_roots', stdout=out)
        # Every anchor (also any the kept test database holds) has its root; the orphan is gone.
        from dcim.models import Site

        expected = {f'prefix/{p}' for p in Prefix.objects.values_list('pk', flat=True)}
        expected |= {f'site/{s}' for s in Site.objects.values_list('pk', flat=True)}
        self.assertIn(f'prefix/{prefix.pk}', expected)
        self.assertIn(f'site/{site.pk}', expected)
        self.assertEqual(set(Root.objects.values_list('key', flat=True)), expected)
        self.assertIn('1 removed', out.getvalue())
        self.assertFalse(Root.objects.filter(hash_dirty=True).exists())
        call_command('unicop_sync_roots', stdout=StringIO())
        self.assertEqual(Root.objects.count(), len(expected))

    def test_frozen_wins(self):
        site = make_site('Bari')
        root = Root.objects.get(key=f'site/{site.pk}')
        root.lease_token, root.lease_holder = 1, 'w'
        root.frozen = True
        self.assertEqual(root.status, 'frozen')
