"""Snapshots: canonical bytes (sorted keys, compact separators, UTF-8, members sorted by object type then
id, volatile fields excluded) and their sha256; determinism (same data -> same bytes and hash), a member
change -> a new hash, an unrelated change -> the same hash; membership rules of the built-in kinds
(prefix: IPs and ranges inside it in the same VRF, nested prefixes included; site: devices, racks, VLANs);
the snapshot endpoint (404 for an unknown root, permission) and the maintained current hash."""

import hashlib
import json

from dcim.models import Rack
from django.urls import reverse
from ipam.models import VLAN, VRF, IPAddress, IPRange, Prefix
from netaddr import IPNetwork
from rest_framework import status
from utilities.testing import APITestCase, TestCase

from unicop.models import Root
from unicop.roots import refresh_hash
from unicop.snapshot import canonical_bytes, read_snapshot

from .fixtures import make_device, make_site, root_of


class CanonicalFormTestCase(TestCase):
    def test_bytes_are_sorted_compact_utf8(self):
        self.assertEqual(
            canonical_bytes({'b': 1, 'a': ['ü', {'d': None, 'c': True}]}),
            '{"a":["ü",{"c":true,"d":null}],"b":1}'.encode(),
        )


class PrefixSnapshotTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.vrf = VRF.objects.create(name='blue')
        cls.prefix = Prefix.objects.create(prefix='10.1.0.0/24')
        cls.ip_b = IPAddress.objects.create(address='10.1.0.20/24', dns_name='b.example.net')
        cls.ip_a = IPAddress.objects.create(address='10.1.0.10/24', dns_name='a.example.net')
        cls.range = IPRange.objects.create(
            start_address=IPNetwork('10.1.0.100/24'), end_address=IPNetwork('10.1.0.150/24')
        )
        # Not members: another VRF, outside the prefix.
        IPAddress.objects.create(address='10.1.0.30/24', vrf=cls.vrf)
        IPAddress.objects.create(address='10.2.0.1/24')
        cls.root = root_of('prefix', cls.prefix)

    def snap(self):
        return read_snapshot(Root.objects.get(pk=self.root.pk))

    def test_shape_and_members(self):
        snap, digest = self.snap()
        self.assertEqual(snap['root']['key'], self.root.key)
        self.assertEqual(snap['root']['kind'], 'prefix')
        self.assertEqual(snap['root']['anchor']['prefix'], '10.1.0.0/24')
        self.assertEqual(
            [(m['object_type'], m['id']) for m in snap['members']],
            sorted(
                [
                    ('ipam.ipaddress', self.ip_a.pk),
                    ('ipam.ipaddress', self.ip_b.pk),
                    ('ipam.iprange', self.range.pk),
                ]
            ),
        )
        member = next(
            m for m in snap['members'] if m['id'] == self.ip_a.pk and m['object_type'] == 'ipam.ipaddress'
        )
        self.assertEqual(member['address'], '10.1.0.10/24')
        self.assertEqual(member['dns_name'], 'a.example.net')
        for volatile in ('created', 'last_updated', '_depth', '_children'):
            self.assertNotIn(volatile, snap['root']['anchor'])
            self.assertNotIn(volatile, member)
        self.assertEqual(digest, hashlib.sha256(canonical_bytes(snap)).hexdigest())

    def test_same_data_same_bytes(self):
        first, h1 = self.snap()
        # Touching objects without changing them (new last_updated) changes nothing.
        self.ip_a.save()
        self.prefix.save()
        second, h2 = self.snap()
        self.assertEqual(canonical_bytes(first), canonical_bytes(second))
        self.assertEqual(h1, h2)

    def test_member_change_new_hash(self):
        _, before = self.snap()
        self.ip_a.dns_name = 'renamed.example.net'
        self.ip_a.save()
        _, after = self.snap()
        self.assertNotEqual(before, after)

    def test_member_added_and_removed(self):
        _, h0 = self.snap()
        ip = IPAddress.objects.create(address='10.1.0.99/24')
        _, h1 = self.snap()
        ip.delete()
        _, h2 = self.snap()
        self.assertNotEqual(h0, h1)
        self.assertEqual(h0, h2)

    def test_unrelated_change_same_hash(self):
        _, before = self.snap()
        IPAddress.objects.create(address='10.9.9.9/24')  # outside
        IPAddress.objects.create(address='10.1.0.77/24', vrf=self.vrf)  # same range, other VRF
        Prefix.objects.create(prefix='10.1.0.0/25')  # a nested prefix (a root of its own)
        make_site('Elsewhere')
        _, after = self.snap()
        self.assertEqual(before, after)

    def test_nested_prefix_members_count_for_both(self):
        child = Prefix.objects.create(prefix='10.1.0.0/28')
        ip = IPAddress.objects.create(address='10.1.0.5/28')
        parent_members = {(m['object_type'], m['id']) for m in self.snap()[0]['members']}
        child_members = {
            (m['object_type'], m['id']) for m in read_snapshot(root_of('prefix', child))[0]['members']
        }
        self.assertIn(('ipam.ipaddress', ip.pk), parent_members)
        # 10.1.0.0/28 holds .5 and .10 (ip_a); .20 (ip_b) is only in the parent.
        self.assertEqual(child_members, {('ipam.ipaddress', ip.pk), ('ipam.ipaddress', self.ip_a.pk)})

    def test_vrf_prefix_sees_only_its_vrf(self):
        vrf_prefix = Prefix.objects.create(prefix='10.1.0.0/24', vrf=self.vrf)
        members = read_snapshot(root_of('prefix', vrf_prefix))[0]['members']
        self.assertEqual([m['address'] for m in members], ['10.1.0.30/24'])

    def test_query_count_does_not_grow_with_members(self):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as few:
            self.snap()
        IPAddress.objects.bulk_create([IPAddress(address=f'10.1.0.{i}/24') for i in range(30, 90)])
        with CaptureQueriesContext(connection) as many:
            self.snap()
        self.assertEqual(len(few), len(many))


class SiteSnapshotTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.site = make_site('Berlin')
        cls.other = make_site('Paris')
        cls.device = make_device(cls.site, 'edge1')
        cls.rack = Rack.objects.create(name='R1', site=cls.site)
        cls.vlan = VLAN.objects.create(vid=100, name='users', site=cls.site)
        make_device(cls.other, 'edge9')

    def test_members(self):
        snap, _ = read_snapshot(root_of('site', self.site))
        self.assertEqual(
            [(m['object_type'], m['id']) for m in snap['members']],
            [('dcim.device', self.device.pk), ('dcim.rack', self.rack.pk), ('ipam.vlan', self.vlan.pk)],
        )
        device = snap['members'][0]
        self.assertEqual(device['name'], 'edge1')
        self.assertEqual(device['role'], {'id': self.device.role_id, 'name': 'Edge', 'slug': 'edge'})
        self.assertEqual(snap['root']['anchor']['name'], 'Berlin')

    def test_device_moves_out(self):
        root = root_of('site', self.site)
        _, before = read_snapshot(root)
        self.device.site = self.other
        self.device.save()
        snap, after = read_snapshot(root)
        self.assertNotEqual(before, after)
        self.assertNotIn('dcim.device', {m['object_type'] for m in snap['members']})


# A snapshot is read by a token allowed to view every object in it (docs/decisions/0048).
PREFIX_VIEWS = ('ipam.view_prefix', 'ipam.view_ipaddress', 'ipam.view_iprange')


class SnapshotAPITestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        cls.prefix = Prefix.objects.create(prefix='10.7.0.0/24')
        IPAddress.objects.create(address='10.7.0.1/24')

    def test_snapshot_endpoint(self):
        self.add_permissions('unicop.view_root', *PREFIX_VIEWS)
        root = root_of('prefix', self.prefix)
        url = reverse('plugins-api:unicop-api:root-snapshot', kwargs={'pk': root.pk})
        response = self.client.get(url, **self.header)
        self.assertHttpStatus(response, status.HTTP_200_OK)
        body = response.json()
        self.assertEqual(body['root'], root.key)
        self.assertEqual(body['hash'], hashlib.sha256(canonical_bytes(body['snapshot'])).hexdigest())
        # The JSON the client parsed re-encodes to the same canonical bytes (nothing lossy in transit).
        self.assertEqual(
            canonical_bytes(json.loads(response.content)['snapshot']), canonical_bytes(read_snapshot(root)[0])
        )

    def test_snapshot_read_heals_the_column(self):
        self.add_permissions('unicop.view_root', *PREFIX_VIEWS)
        root = root_of('prefix', self.prefix)
        Root.objects.filter(pk=root.pk).update(
            current_hash='0' * 64, hash_dirty=False
        )  # e.g. a raw SQL write
        body = self.client.get(
            reverse('plugins-api:unicop-api:root-snapshot', kwargs={'pk': root.pk}), **self.header
        ).json()
        self.assertEqual(Root.objects.get(pk=root.pk).current_hash, body['hash'])

    def test_unknown_root_404(self):
        self.add_permissions('unicop.view_root')
        url = reverse('plugins-api:unicop-api:root-snapshot', kwargs={'pk': 999999})
        self.assertHttpStatus(self.client.get(url, **self.header), status.HTTP_404_NOT_FOUND)

    def test_needs_view_permission(self):
        root = root_of('prefix', self.prefix)
        url = reverse('plugins-api:unicop-api:root-snapshot', kwargs={'pk': root.pk})
        self.assertHttpStatus(self.client.get(url, **self.header), status.HTTP_403_FORBIDDEN)


class CurrentHashTestCase(TestCase):
    """The maintained current_hash (docs/decisions/0021): dirty in the change's transaction, equal to the
    snapshot's hash once refreshed."""

    def test_dirty_on_member_change_and_refreshed(self):
        prefix = Prefix.objects.create(prefix='10.8.0.0/24')
        root = root_of('prefix', prefix)
        refresh_hash(root)
        root.refresh_from_db()
        self.assertFalse(root.hash_dirty)
        self.assertEqual(root.current_hash, read_snapshot(root)[1])
        generation = root.hash_generation

        IPAddress.objects.create(address='10.8.0.1/24')
        root.refresh_from_db()
        self.assertTrue(root.hash_dirty)
        self.assertGreater(root.hash_generation, generation)
        refresh_hash(root)
        root.refresh_from_db()
        self.assertEqual(root.current_hash, read_snapshot(root)[1])

    def test_move_dirties_old_and_new_root(self):
        old, new = Prefix.objects.create(prefix='10.8.3.0/24'), Prefix.objects.create(prefix='10.8.4.0/24')
        ip = IPAddress.objects.create(address='10.8.3.5/24')
        roots = [root_of('prefix', old), root_of('prefix', new)]
        for root in roots:
            refresh_hash(root)
        ip.address = IPNetwork('10.8.4.5/24')
        ip.save()  # no changelog snapshot here: the stored state read in pre_save finds the old root
        for root in roots:
            root.refresh_from_db()
            self.assertTrue(root.hash_dirty, root.key)

    def test_unrelated_change_leaves_hash_clean(self):
        prefix = Prefix.objects.create(prefix='10.8.1.0/24')
        root = root_of('prefix', prefix)
        refresh_hash(root)
        IPAddress.objects.create(address='10.99.99.1/24')
        root.refresh_from_db()
        self.assertFalse(root.hash_dirty)

    def test_stale_refresh_does_not_overwrite(self):
        prefix = Prefix.objects.create(prefix='10.8.2.0/24')
        root = root_of('prefix', prefix)
        stale = Root.objects.get(pk=root.pk)  # read before the change
        IPAddress.objects.create(address='10.8.2.1/24')
        stale.hash_generation -= 0  # the generation it read is now outdated
        Root.objects.filter(pk=root.pk).update(hash_generation=stale.hash_generation + 5)
        refresh_hash(stale)
        root.refresh_from_db()
        self.assertTrue(root.hash_dirty, 'a refresh based on an outdated generation must not clear dirty')
