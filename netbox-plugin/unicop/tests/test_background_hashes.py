"""Current hashes off the request path (docs/decisions/0043): a save only marks its roots stale (one
UPDATE of the root rows, no snapshot, also after commit; a root marked again keeps its first mark's
time); the background recompute (unicop.hashes, `netbox unicop_hashes`) takes the oldest stale roots
first, stores each hash with a compare-and-set on the generation read with the snapshot (a change made
while it read leaves the root stale), reports a root it cannot read and goes on; the listing shows a
stale root as stale and computes no snapshot, however many roots are stale."""

from datetime import timedelta
from io import StringIO
from unittest import mock

from django.core.management import call_command
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from ipam.models import IPAddress, Prefix
from rest_framework import status
from utilities.testing import APITestCase

from unicop import hashes
from unicop.models import Root
from unicop.roots import refresh_hash
from unicop.snapshot import read_snapshot

from .fixtures import make_site, root_of


def no_snapshot(*args, **kwargs):
    raise AssertionError('a snapshot was computed')


class SaveMarksOnlyTestCase(TestCase):
    def test_save_marks_stale_and_computes_no_snapshot(self):
        prefix = Prefix.objects.create(prefix='10.61.0.0/24')
        root = root_of('prefix', prefix)
        refresh_hash(root)
        root.refresh_from_db()
        before = (root.current_hash, root.hash_generation)
        self.assertEqual((root.hash_dirty, root.hash_stale_since), (False, None))

        with mock.patch('unicop.snapshot.build_snapshot', no_snapshot):
            with self.captureOnCommitCallbacks(execute=True):
                IPAddress.objects.create(address='10.61.0.1/24')
        root.refresh_from_db()
        self.assertTrue(root.hash_dirty)
        self.assertIsNotNone(root.hash_stale_since)
        self.assertEqual(root.current_hash, before[0], 'the stored hash is only replaced in the background')
        self.assertGreater(root.hash_generation, before[1])

    def test_many_saves_one_stale_row_marked_once_each(self):
        prefix = Prefix.objects.create(prefix='10.61.1.0/24')
        root = root_of('prefix', prefix)
        refresh_hash(root)
        IPAddress.objects.create(address='10.61.1.1/24')
        first = Root.objects.get(pk=root.pk)
        with CaptureQueriesContext(connection) as queries:
            for i in range(2, 22):
                IPAddress.objects.create(address=f'10.61.1.{i}/24')
        updates = [q['sql'] for q in queries if q['sql'].startswith('UPDATE "unicop_root"')]
        self.assertEqual(len(updates), 20, 'one UPDATE of the root rows per save')
        root.refresh_from_db()
        self.assertEqual(root.hash_stale_since, first.hash_stale_since, 'the first mark since the last store')
        self.assertEqual(root.hash_generation, first.hash_generation + 20)
        self.assertEqual(list(Root.objects.filter(hash_dirty=True, kind='prefix', pk=root.pk)), [root])

    def test_new_anchor_root_is_stale_until_recomputed(self):
        site = make_site('Turin')
        root = root_of('site', site)
        self.assertTrue(root.hash_dirty)
        self.assertIsNotNone(root.hash_stale_since)
        self.assertEqual(root.current_hash, '')


class BackgroundRecomputeTestCase(TestCase):
    def setUp(self):
        # Only this test's roots are stale (the kept test database may hold others from elsewhere).
        Root.objects.update(hash_dirty=False)
        now = timezone.now()
        self.roots = []
        for i in range(3):
            prefix = Prefix.objects.create(prefix=f'10.62.{i}.0/24')
            IPAddress.objects.create(address=f'10.62.{i}.1/24')
            root = root_of('prefix', prefix)
            # Oldest first: the last prefix made has been stale longest.
            Root.objects.filter(pk=root.pk).update(hash_stale_since=now - timedelta(minutes=i))
            self.roots.append(root)

    def state(self, root):
        root.refresh_from_db()
        return root

    def test_oldest_stale_roots_first_then_the_rest(self):
        first = hashes.recompute_stale(limit=2)
        self.assertEqual((first.taken, first.stored, first.changed, first.failed), (2, 2, 0, []))
        newest, *oldest = [self.state(r) for r in self.roots]
        for root in oldest:
            self.assertEqual(
                (root.hash_dirty, root.hash_stale_since, root.current_hash),
                (False, None, read_snapshot(root)[1]),
            )
            self.assertIsNotNone(root.hash_computed_at)
        self.assertTrue(newest.hash_dirty, 'not taken in the first pass: it became stale last')
        second = hashes.recompute_stale(limit=2)
        self.assertEqual((second.taken, second.stored), (1, 1))
        self.assertEqual(self.state(newest).current_hash, read_snapshot(newest)[1])
        self.assertEqual(hashes.recompute_stale(limit=2).taken, 0)

    def test_change_while_reading_leaves_the_root_stale(self):
        root = self.roots[0]
        real = hashes.build_snapshot

        def read_then_change(r):
            snap = real(r)
            IPAddress.objects.create(address='10.62.0.99/24')  # committed after the read's snapshot
            return snap

        with mock.patch('unicop.hashes.build_snapshot', read_then_change):
            result = hashes.recompute(root.pk)
        self.assertEqual(result, 'changed')
        self.assertTrue(self.state(root).hash_dirty)
        self.assertEqual(hashes.recompute(root.pk), 'stored')
        root = self.state(root)
        self.assertFalse(root.hash_dirty)
        self.assertIn('10.62.0.99/24', [m.get('address') for m in read_snapshot(root)[0]['members']])
        self.assertEqual(root.current_hash, read_snapshot(root)[1])

    def test_unreadable_root_reported_left_stale_others_stored(self):
        orphan = Root.objects.create(
            kind='prefix',
            anchor_type=self.roots[0].anchor_type,
            anchor_id=999999,
            key='prefix/999999',
            hash_stale_since=timezone.now() - timedelta(hours=1),
        )
        stored, failed = hashes.recompute_all_stale(limit=2)
        self.assertEqual(stored, 3)
        self.assertEqual(list(failed), [orphan.pk])
        self.assertIn('LookupError', failed[orphan.pk])
        self.assertTrue(self.state(orphan).hash_dirty)

    def test_unicop_hashes_once(self):
        out = StringIO()
        call_command('unicop_hashes', '--once', stdout=out)
        self.assertIn('3 current hashes recomputed, 0 failed', out.getvalue())
        self.assertFalse(Root.objects.filter(hash_dirty=True).exists())


class StaleListingTestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        for i in range(6):
            make_site(f'Stale{i}')
        Prefix.objects.create(prefix='10.63.0.0/24')
        IPAddress.objects.create(address='10.63.0.1/24')

    def test_listing_many_stale_roots_computes_no_snapshot(self):
        self.add_permissions('unicop.view_root')
        stale = Root.objects.filter(hash_dirty=True).count()
        self.assertGreaterEqual(stale, 7)
        with mock.patch('unicop.snapshot.build_snapshot', no_snapshot):
            url = reverse('plugins-api:unicop-api:root-list') + '?limit=1000'
            response = self.client.get(url, **self.header)
        self.assertHttpStatus(response, status.HTTP_200_OK)
        listed = [r for r in response.json()['results'] if r['hash_stale']]
        self.assertEqual(len(listed), stale)
        self.assertTrue(all(r['hash_stale_since'] and r['status'] == 'pending' for r in listed))
        self.assertEqual(Root.objects.filter(hash_dirty=True).count(), stale)
