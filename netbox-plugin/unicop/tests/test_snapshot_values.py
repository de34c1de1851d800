"""Snapshot field values that are not JSON (snapshot.encode_value): a kind anchored on `ipam.vlangroup`
(`vid_ranges`, an array of PostgreSQL ranges) gives its snapshot, each non-JSON type NetBox 4.7 columns
hold has the form the hash has always given it (json.dumps(default=str): existing roots' hashes do not
move), and a value with no canonical form is refused naming the object and field: 422 from the snapshot
endpoint, never a 500."""

import datetime
import decimal
import hashlib
import json
import uuid
import zoneinfo
from unittest import mock

from django.urls import reverse
from ipam.models import VLAN, VLANGroup
from netaddr import EUI, IPAddress, IPNetwork
from psycopg.types.range import Range
from rest_framework import status
from utilities.testing import APITestCase, TestCase

from unicop import snapshot
from unicop.catalogue import load_catalogue
from unicop.roots import ensure_root
from unicop.snapshot import SnapshotUnencodable, canonical_bytes, encode_value, read_snapshot

VLANGROUP_KIND = {
    'vlangroup': {
        'anchor': 'ipam.vlangroup',
        'members': [{'object_type': 'ipam.vlan', 'relation': 'fk', 'field': 'group'}],
    }
}


def before_encoder(value):
    """The JSON a value had before the encoder was explicit: JSON types kept, others str() at the top,
    json.dumps(default=str) inside lists and dicts."""
    if value is None or isinstance(value, (bool, int, str, float, list, dict)):
        return json.loads(json.dumps(value, default=str))
    return str(value)


class EncodeValueTestCase(TestCase):
    VALUES = [
        decimal.Decimal('12.50'),
        IPNetwork('10.1.0.10/24'),
        IPNetwork('2001:db8::1/64'),
        IPAddress('10.1.0.1'),
        EUI('00:11:22:33:44:55'),
        datetime.date(2026, 12, 2),
        datetime.datetime(2026, 12, 2, 17, 5, tzinfo=datetime.UTC),
        datetime.time(23, 0),
        datetime.timedelta(days=1, seconds=5),
        uuid.UUID('12345678-1234-5678-1234-567812345678'),
        zoneinfo.ZoneInfo('Europe/Berlin'),
        Range(1, 4095, '[)'),
        Range(empty=True),
        [Range(1, 100, '[)'), Range(200, 301, '[)')],
        [IPNetwork('10.0.0.0/8'), IPNetwork('192.0.2.0/24')],
        {'a': [decimal.Decimal('1.5'), None], 'b': {'c': True}},
        [3, 1, 2],
        'ü',
        1.25,
        None,
    ]

    def test_forms_are_those_the_hash_always_had(self):
        for value in self.VALUES:
            with self.subTest(value=repr(value)):
                self.assertEqual(encode_value(value, 'ipam.vlangroup', 1, 'f'), before_encoder(value))

    def test_range_forms(self):
        self.assertEqual(
            encode_value([Range(1, 100, '[)'), Range(empty=True)], 'ipam.vlangroup', 1, 'vid_ranges'),
            ['[1, 100)', 'empty'],
        )

    def test_bytes_are_base64(self):
        self.assertEqual(encode_value(memoryview(b'\x00\xff'), 'core.datafile', 3, 'data'), 'AP8=')

    def test_unknown_type_refused_naming_object_and_field(self):
        with self.assertRaises(SnapshotUnencodable) as caught:
            encode_value([object()], 'dcim.site', 42, 'odd')
        self.assertIn('dcim.site 42 field odd', str(caught.exception))
        self.assertIn('builtins.object', str(caught.exception))
        self.assertEqual((caught.exception.object_type, caught.exception.field), ('dcim.site', 'odd'))

    def test_non_finite_float_refused(self):
        with self.assertRaisesRegex(
            SnapshotUnencodable, 'dcim.site 42 field weight: nan is not a JSON number'
        ):
            encode_value(float('nan'), 'dcim.site', 42, 'weight')


class VLANGroupSnapshotTestCase(APITestCase):
    def setUp(self):
        super().setUp()
        self.addCleanup(load_catalogue)
        kind = load_catalogue(VLANGROUP_KIND)['vlangroup']
        self.group = VLANGroup.objects.create(
            name='G1', slug='g1', vid_ranges=[Range(1, 100, '[)'), Range(200, 301, '[)')]
        )
        VLAN.objects.create(vid=10, name='ten', group=self.group)
        self.root = ensure_root(kind, self.group)
        self.url = reverse('plugins-api:unicop-api:root-snapshot', kwargs={'pk': self.root.pk})
        self.add_permissions('unicop.view_root', 'ipam.view_vlangroup', 'ipam.view_vlan')

    def test_snapshot_endpoint_gives_vid_ranges(self):
        response = self.client.get(self.url, **self.header)
        self.assertHttpStatus(response, status.HTTP_200_OK)
        body = response.json()
        self.assertEqual(body['snapshot']['root']['anchor']['vid_ranges'], ['[1, 100)', '[200, 301)'])
        self.assertEqual([m['vid'] for m in body['snapshot']['members']], [10])
        self.assertEqual(body['hash'], hashlib.sha256(canonical_bytes(body['snapshot'])).hexdigest())
        self.assertEqual(body['hash'], read_snapshot(self.root)[1])

    def test_unencodable_value_is_422_naming_object_and_field(self):
        known = tuple(t for t in snapshot.STRING_TYPES if t is not Range)  # as if ranges had no form
        with mock.patch.object(snapshot, 'STRING_TYPES', known):
            response = self.client.get(self.url, **self.header)
        self.assertHttpStatus(response, status.HTTP_422_UNPROCESSABLE_ENTITY)
        body = response.json()
        self.assertEqual(
            (body['object_type'], body['id'], body['field']), ('ipam.vlangroup', self.group.pk, 'vid_ranges')
        )
        self.assertIn(f'ipam.vlangroup {self.group.pk} field vid_ranges', body['detail'])
        self.assertNotIn('Traceback', response.content.decode())

    def test_lease_with_context_is_422_and_given_back(self):
        self.add_permissions('unicop.change_root')
        url = reverse('plugins-api:unicop-api:root-lease', kwargs={'pk': self.root.pk})
        body = {'holder': 'values-test', 'ttl_seconds': 60, 'context': True}
        known = tuple(t for t in snapshot.STRING_TYPES if t is not Range)
        with mock.patch.object(snapshot, 'STRING_TYPES', known):
            response = self.client.post(url, body, format='json', **self.header)
        self.assertHttpStatus(response, status.HTTP_422_UNPROCESSABLE_ENTITY)
        self.assertEqual(response.json()['field'], 'vid_ranges')
        self.root.refresh_from_db()
        self.assertFalse(self.root.lease_live(), 'the lease taken for the unencodable context was released')
