"""The resolver endpoint POST /api/plugins/unicop/resolve/: the roots a webhook change touches, read from
the database for created/updated plus the prechange state (an IP moving between prefixes touches both
roots; a device moving between sites touches both), from data/prechange for deleted objects; an anchor
belongs to its own root; unknown object types give []; malformed entries give 400 naming index and
field; more than 500 changes are refused; the view permission on roots is required. A batch is
answered as each of its changes would be alone, with a number of SQL queries that does not grow with
the batch (one read per member object type, one per prefix_contains rule: docs/decisions/0046)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from ipam.models import VRF, IPAddress, Prefix
from rest_framework import status
from utilities.testing import APITestCase

from ..roots import resolve_changes
from .fixtures import make_device, make_site

URL = reverse('plugins-api:unicop-api:resolve')


class ResolverTestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        cls.vrf = VRF.objects.create(name='red')
        cls.p1 = Prefix.objects.create(prefix='10.10.1.0/24')
        cls.p2 = Prefix.objects.create(prefix='10.10.2.0/24')
        cls.outer = Prefix.objects.create(prefix='10.10.0.0/16')
        cls.p1_red = Prefix.objects.create(prefix='10.10.1.0/24', vrf=cls.vrf)
        cls.site1 = make_site('Oslo')
        cls.site2 = make_site('Bergen')

    def setUp(self):
        super().setUp()
        self.add_permissions('unicop.view_root')

    def resolve(self, *changes):
        response = self.client.post(URL, {'changes': list(changes)}, format='json', **self.header)
        self.assertHttpStatus(response, status.HTTP_200_OK)
        return [r['root_keys'] for r in response.json()['results']]

    def key(self, kind, obj):
        return f'{kind}/{obj.pk}'

    def test_created_ip(self):
        ip = IPAddress.objects.create(address='10.10.1.5/24')
        [keys] = self.resolve(
            {
                'object_type': 'ipam.ipaddress',
                'object_id': ip.pk,
                'event': 'created',
                'data': {'id': ip.pk},
                'prechange': None,
                'postchange': {},
            }
        )
        self.assertEqual(keys, sorted([self.key('prefix', self.p1), self.key('prefix', self.outer)]))

    def test_vrf_aware(self):
        ip = IPAddress.objects.create(address='10.10.1.6/24', vrf=self.vrf)
        [keys] = self.resolve({'object_type': 'ipam.ipaddress', 'object_id': ip.pk, 'event': 'created'})
        self.assertEqual(keys, [self.key('prefix', self.p1_red)])

    def test_updated_in_place(self):
        ip = IPAddress.objects.create(address='10.10.2.7/24')
        prechange = {'address': '10.10.2.7/24', 'vrf': None, 'dns_name': ''}
        [keys] = self.resolve(
            {'object_type': 'ipam.ipaddress', 'object_id': ip.pk, 'event': 'updated', 'prechange': prechange}
        )
        self.assertEqual(keys, sorted([self.key('prefix', self.p2), self.key('prefix', self.outer)]))

    def test_move_between_prefixes_touches_both(self):
        ip = IPAddress.objects.create(address='10.10.1.8/24')
        ip.address = '10.10.2.8/24'
        ip.save()
        # The database says p2 now; the prechange (changelog shape: vrf as an id) says p1.
        [keys] = self.resolve(
            {
                'object_type': 'ipam.ipaddress',
                'object_id': ip.pk,
                'event': 'updated',
                'data': {'id': ip.pk, 'address': '10.10.2.8/24'},
                'prechange': {'address': '10.10.1.8/24', 'vrf': None},
            }
        )
        self.assertEqual(
            keys,
            sorted(
                [self.key('prefix', self.p1), self.key('prefix', self.p2), self.key('prefix', self.outer)]
            ),
        )

    def test_move_between_vrfs(self):
        ip = IPAddress.objects.create(address='10.10.1.9/24', vrf=self.vrf)
        [keys] = self.resolve(
            {
                'object_type': 'ipam.ipaddress',
                'object_id': ip.pk,
                'event': 'updated',
                'prechange': {'address': '10.10.1.9/24', 'vrf': None},
            }
        )
        self.assertEqual(
            keys,
            sorted(
                [self.key('prefix', self.p1_red), self.key('prefix', self.p1), self.key('prefix', self.outer)]
            ),
        )

    def test_deleted_from_rest_data(self):
        # The object is gone: REST `data` (nested vrf) decides.
        [keys] = self.resolve(
            {
                'object_type': 'ipam.ipaddress',
                'object_id': 424242,
                'event': 'deleted',
                'data': {'id': 424242, 'address': '10.10.1.50/24', 'vrf': {'id': self.vrf.pk}},
                'prechange': None,
                'postchange': None,
            }
        )
        self.assertEqual(keys, [self.key('prefix', self.p1_red)])

    def test_deleted_from_prechange(self):
        [keys] = self.resolve(
            {
                'object_type': 'ipam.ipaddress',
                'object_id': 424243,
                'event': 'deleted',
                'data': None,
                'prechange': {'address': '10.10.2.50/24', 'vrf': None},
            }
        )
        self.assertEqual(keys, sorted([self.key('prefix', self.p2), self.key('prefix', self.outer)]))

    def test_ip_range(self):
        [keys] = self.resolve(
            {
                'object_type': 'ipam.iprange',
                'object_id': 5,
                'event': 'deleted',
                'data': {'start_address': '10.10.2.10/24', 'end_address': '10.10.2.20/24', 'vrf': None},
            }
        )
        self.assertEqual(keys, sorted([self.key('prefix', self.p2), self.key('prefix', self.outer)]))

    def test_device_moves_between_sites(self):
        device = make_device(self.site1, 'sw1')
        device.site = self.site2
        device.save()
        [keys] = self.resolve(
            {
                'object_type': 'dcim.device',
                'object_id': device.pk,
                'event': 'updated',
                'prechange': {'name': 'sw1', 'site': self.site1.pk},
            }
        )
        self.assertEqual(keys, sorted([self.key('site', self.site1), self.key('site', self.site2)]))

    def test_anchor_belongs_to_its_root(self):
        [created, deleted] = self.resolve(
            {'object_type': 'dcim.site', 'object_id': self.site1.pk, 'event': 'updated'},
            {
                'object_type': 'ipam.prefix',
                'object_id': 777,
                'event': 'deleted',
                'data': {'prefix': '10.0.0.0/8'},
            },
        )
        self.assertEqual(created, [self.key('site', self.site1)])
        self.assertEqual(deleted, ['prefix/777'])

    def test_unknown_type_and_outside(self):
        results = self.resolve(
            {'object_type': 'circuits.circuit', 'object_id': 1, 'event': 'created'},
            {
                'object_type': 'ipam.ipaddress',
                'object_id': 999999,
                'event': 'deleted',
                'data': {'address': '192.0.2.1/24', 'vrf': None},
            },
        )
        self.assertEqual(results, [[], []])

    def test_results_in_order(self):
        ip = IPAddress.objects.create(address='10.10.2.30/24')
        results = self.resolve(
            {'object_type': 'dcim.site', 'object_id': self.site2.pk, 'event': 'updated'},
            {'object_type': 'ipam.ipaddress', 'object_id': ip.pk, 'event': 'created'},
            {'object_type': 'circuits.provider', 'object_id': 1, 'event': 'created'},  # in no kind
        )
        self.assertEqual(
            results,
            [
                [self.key('site', self.site2)],
                sorted([self.key('prefix', self.p2), self.key('prefix', self.outer)]),
                [],
            ],
        )


class ResolverBatchTestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        cls.vrf = VRF.objects.create(name='blue')
        cls.p1 = Prefix.objects.create(prefix='10.20.1.0/24')
        cls.p2 = Prefix.objects.create(prefix='10.20.2.0/24')
        cls.outer = Prefix.objects.create(prefix='10.20.0.0/16')
        cls.p1_blue = Prefix.objects.create(prefix='10.20.1.0/24', vrf=cls.vrf)
        cls.site1 = make_site('Tromso')
        cls.site2 = make_site('Bodo')
        cls.ips = [
            IPAddress.objects.create(
                address=f'10.20.{1 + n % 2}.{10 + n}/24', vrf=cls.vrf if n % 5 == 0 else None
            )
            for n in range(40)
        ]
        cls.device = make_device(cls.site1, 'sw9')

    def setUp(self):
        super().setUp()
        self.add_permissions('unicop.view_root')

    def ip_changes(self, count):
        """Updates of `count` addresses, each also naming where it was before (another prefix)."""
        return [
            {
                'object_type': 'ipam.ipaddress',
                'object_id': ip.pk,
                'event': 'updated',
                'prechange': {'address': f'10.20.{2 - n % 2}.{10 + n}/24', 'vrf': None},
            }
            for n, ip in enumerate(self.ips[:count])
        ]

    def mixed_changes(self):
        return [
            *self.ip_changes(6),
            {
                'object_type': 'ipam.ipaddress',
                'object_id': 424244,
                'event': 'deleted',
                'data': {'address': '10.20.1.99/24', 'vrf': {'id': self.vrf.pk}},
            },
            {
                'object_type': 'ipam.ipaddress',
                'object_id': 424245,
                'event': 'updated',
                'postchange': {'address': '10.20.2.99/24', 'vrf': None},
            },
            {
                'object_type': 'ipam.iprange',
                'object_id': 6,
                'event': 'deleted',
                'data': {'start_address': '10.20.1.10/24', 'end_address': '10.20.2.20/24', 'vrf': None},
            },
            {
                'object_type': 'dcim.device',
                'object_id': self.device.pk,
                'event': 'updated',
                'prechange': {'site': self.site2.pk},
            },
            {'object_type': 'dcim.site', 'object_id': self.site1.pk, 'event': 'updated'},
            {'object_type': 'ipam.prefix', 'object_id': self.p2.pk, 'event': 'created'},
            {'object_type': 'circuits.provider', 'object_id': 1, 'event': 'created'},  # in no kind
            {'object_type': 'ipam.ipaddress', 'object_id': self.ips[0].pk, 'event': 'updated'},  # again
        ]

    def test_batch_answers_each_change_as_alone(self):
        changes = self.mixed_changes()
        alone = [resolve_changes([change])[0] for change in changes]
        self.assertEqual(resolve_changes(changes), alone)
        # A few answers pinned, so "as alone" is not vacuous.
        # In blue now, in the global table before.
        self.assertEqual(alone[0], sorted(f'prefix/{p.pk}' for p in (self.p1_blue, self.p2, self.outer)))
        self.assertEqual(alone[1], sorted(f'prefix/{p.pk}' for p in (self.p1, self.p2, self.outer)))
        self.assertEqual(alone[6], [f'prefix/{self.p1_blue.pk}'])
        self.assertEqual(alone[7], sorted(f'prefix/{p.pk}' for p in (self.p2, self.outer)))
        self.assertEqual(alone[8], [f'prefix/{self.outer.pk}'])  # a range across two /24s
        self.assertEqual(alone[9], sorted(f'site/{s.pk}' for s in (self.site1, self.site2)))
        self.assertEqual(alone[11], [f'prefix/{self.p2.pk}'])
        self.assertEqual(alone[12], [])

    def test_queries_do_not_grow_with_the_batch(self):
        # 40 moved addresses: one read of their rows, one containment query for all their spans.
        with self.assertNumQueries(2):
            resolve_changes(self.ip_changes(40))
        # Every member type and relation at once: rows of addresses and devices (2), containment of
        # addresses and of ranges (2); fk and anchors need none.
        with self.assertNumQueries(4):
            resolve_changes(self.mixed_changes())

    def test_endpoint_queries_do_not_grow_with_the_batch(self):
        def queries(changes):
            with CaptureQueriesContext(connection) as captured:
                response = self.client.post(URL, {'changes': changes}, format='json', **self.header)
            self.assertHttpStatus(response, status.HTTP_200_OK)
            return len(captured.captured_queries)

        queries(self.ip_changes(1))  # the token's and the user's first reads are cached after it
        self.assertEqual(queries(self.ip_changes(40)), queries(self.ip_changes(1)))


class ResolverBadInputTestCase(APITestCase):
    def setUp(self):
        super().setUp()
        self.add_permissions('unicop.view_root')

    def post(self, body):
        return self.client.post(URL, body, format='json', **self.header)

    def test_malformed_entry_names_index_and_field(self):
        response = self.post(
            {
                'changes': [
                    {'object_type': 'ipam.ipaddress', 'object_id': 1, 'event': 'created'},
                    {'object_type': 'ipam.ipaddress', 'object_id': 'x', 'event': 'moved'},
                ]
            }
        )
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        body = response.json()
        self.assertIn('changes[1].event', body)
        self.assertIn('changes[1].object_id', body)
        self.assertNotIn('changes[0].event', body)

    def test_missing_changes(self):
        response = self.post({'change': []})
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        self.assertIn('changes', response.json())

    def test_too_many_changes(self):
        change = {'object_type': 'circuits.circuit', 'object_id': 1, 'event': 'created'}
        self.assertHttpStatus(self.post({'changes': [change] * 501}), status.HTTP_400_BAD_REQUEST)
        self.assertHttpStatus(self.post({'changes': [change] * 500}), status.HTTP_200_OK)

    def test_needs_permission(self):
        self.user.user_permissions.clear()
        for perm in self.user.object_permissions.all():
            perm.delete()
        response = self.client.post(URL, {'changes': []}, format='json', **self.header)
        self.assertHttpStatus(response, status.HTTP_403_FORBIDDEN)

    def test_anonymous_refused(self):
        self.assertHttpStatus(
            self.client.post(URL, {'changes': []}, format='json'), status.HTTP_403_FORBIDDEN
        )
