"""Objects a root shows without holding them (docs/decisions/0067, referrers.py): renaming a foreign
key's target (a tenant, a device type's slug, a VLAN) or a tag through NetBox's REST API marks stale —
bumps the generation of — exactly the roots whose anchor or members point at it, in one UPDATE whatever
their number; an edit of a field no snapshot shows, or a delete the database refuses, marks nothing. So a
hash that moves with no generation is an edit that bypassed NetBox: the fail-safe's `snapshot_changed`."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from extras.models import Tag
from ipam.models import VLAN, IPAddress, Prefix
from rest_framework import status
from tenancy.models import Tenant
from utilities.testing import APITestCase

from unicop.models import Root
from unicop.roots import refresh_hash
from unicop.snapshot import read_snapshot

from .fixtures import make_device, make_site, root_of


def generations():
    return dict(Root.objects.values_list('key', 'hash_generation'))


class ShownObjectsTestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        cls.tenant = Tenant.objects.create(name='Shown Tenant', slug='shown-tenant')
        cls.tag = Tag.objects.create(name='Shown Tag', slug='shown-tag')
        cls.site_a = make_site('ShownA')  # its anchor names the tenant
        cls.site_a.tenant = cls.tenant
        cls.site_a.save()
        cls.site_b = make_site('ShownB')  # a device of the shared device type, tagged
        cls.device = make_device(cls.site_b, 'shown-b1')
        cls.device.tags.add(cls.tag)
        cls.site_c = make_site('ShownC')  # nothing shown
        cls.vlan = VLAN.objects.create(vid=610, name='shown-vlan', site=cls.site_c)
        cls.prefix = Prefix.objects.create(prefix='10.67.0.0/24', vlan=cls.vlan)  # names the VLAN
        IPAddress.objects.create(address='10.67.0.5/24', tenant=cls.tenant)  # a member names the tenant
        cls.other = Prefix.objects.create(prefix='10.67.1.0/24')

    def setUp(self):
        super().setUp()
        self.keys = {
            name: root_of(kind, obj).key
            for name, kind, obj in (
                ('a', 'site', self.site_a),
                ('b', 'site', self.site_b),
                ('c', 'site', self.site_c),
                ('p', 'prefix', self.prefix),
                ('q', 'prefix', self.other),
            )
        }

    def bumped(self, before):
        after = generations()
        return {name for name, key in self.keys.items() if after[key] != before[key]}

    def patch(self, path, pk, body):
        response = self.client.patch(reverse(path, kwargs={'pk': pk}), body, format='json', **self.header)
        self.assertHttpStatus(response, status.HTTP_200_OK)

    def test_renaming_a_tenant_marks_the_roots_that_show_it(self):
        self.add_permissions('tenancy.change_tenant')
        before = generations()
        self.patch('tenancy-api:tenant-detail', self.tenant.pk, {'name': 'Shown Tenant 2'})
        self.assertEqual(self.bumped(before), {'a', 'p'})
        root = Root.objects.get(key=self.keys['a'])
        self.assertTrue(root.hash_dirty)

    def test_renaming_a_tag_marks_the_roots_that_show_it(self):
        self.add_permissions('extras.change_tag')
        before = generations()
        self.patch('extras-api:tag-detail', self.tag.pk, {'slug': 'shown-tag-2'})
        self.assertEqual(self.bumped(before), {'b'})

    def test_a_device_type_slug_and_a_vlan_name(self):
        self.add_permissions('dcim.change_devicetype', 'ipam.change_vlan')
        before = generations()
        self.patch('dcim-api:devicetype-detail', self.device.device_type_id, {'slug': 'box-2'})
        self.assertEqual(self.bumped(before), {'b'})
        before = generations()
        # The VLAN is a member of site C and shown by the prefix that names it.
        self.patch('ipam-api:vlan-detail', self.vlan.pk, {'name': 'shown-vlan-2'})
        self.assertEqual(self.bumped(before), {'c', 'p'})

    def test_an_edit_no_snapshot_shows_marks_nothing(self):
        self.add_permissions('tenancy.change_tenant', 'dcim.change_devicetype')
        before = generations()
        self.patch('tenancy-api:tenant-detail', self.tenant.pk, {'description': 'not in any snapshot'})
        self.patch('dcim-api:devicetype-detail', self.device.device_type_id, {'model': 'Box Mk2'})
        self.assertEqual(self.bumped(before), set())

    def test_a_refused_delete_marks_nothing(self):
        """The tenant is protected (its referrers exist): the delete is refused, the mark rolled back."""
        self.add_permissions('tenancy.delete_tenant')
        before = generations()
        response = self.client.delete(
            reverse('tenancy-api:tenant-detail', kwargs={'pk': self.tenant.pk}), **self.header
        )
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertEqual(self.bumped(before), set())

    def test_the_hash_moves_only_with_the_generation(self):
        """What the fail-safe relies on: after a rename through NetBox the hash differs and so does the
        generation."""
        root = Root.objects.get(key=self.keys['b'])
        refresh_hash(root)
        root.refresh_from_db()
        before = (root.current_hash, root.hash_generation)
        self.add_permissions('extras.change_tag')
        self.patch('extras-api:tag-detail', self.tag.pk, {'slug': 'shown-tag-3'})
        root.refresh_from_db()
        self.assertNotEqual(read_snapshot(root)[1], before[0])
        self.assertGreater(root.hash_generation, before[1])

    def test_one_update_whatever_the_number_of_roots(self):
        def rename(slug):
            self.tag.slug = slug
            with CaptureQueriesContext(connection) as queries:
                self.tag.save()
            return [q['sql'] for q in queries.captured_queries if 'unicop_root' in q['sql']]

        few = rename('shown-few')
        for i in range(8):
            make_device(make_site(f'ShownMany{i}'), f'shown-many-{i}').tags.add(self.tag)
        before = generations()
        many = rename('shown-many')
        self.assertEqual(len(many), 1, many)
        self.assertEqual(len(few), len(many))
        self.assertEqual(len(self.bumped(before)), 1)  # b, among the named ones
        self.assertEqual(sum(1 for k, g in generations().items() if g != before[k]), 9)

    def test_a_new_custom_field_marks_every_root(self):
        """NetBox writes a new field's default into every object of its types with a queryset update."""
        self.add_permissions('extras.add_customfield')
        before = generations()
        response = self.client.post(
            reverse('extras-api:customfield-list'),
            {'name': 'shown_cf', 'type': 'text', 'object_types': ['dcim.site'], 'default': 'x'},
            format='json',
            **self.header,
        )
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
        self.assertEqual(self.bumped(before), set(self.keys))

    def test_a_custom_field_edit_that_rewrites_no_data_marks_nothing(self):
        self.add_permissions('extras.add_customfield', 'extras.change_customfield')
        response = self.client.post(
            reverse('extras-api:customfield-list'),
            {'name': 'shown_cf_plain', 'type': 'text', 'object_types': ['dcim.site']},
            format='json',
            **self.header,
        )
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
        before = generations()
        self.patch(
            'extras-api:customfield-detail', response.json()['id'], {'description': 'no data rewritten'}
        )
        self.assertEqual(self.bumped(before), set())
        self.patch('extras-api:customfield-detail', response.json()['id'], {'name': 'shown_cf_renamed'})
        self.assertEqual(self.bumped(before), set(self.keys))
