"""The hash read just before a launch (docs/decisions/0067): `GET roots/{id}/hash/` answers the root's hash
computed now and its `hash_generation`, read together; the snapshot and the lease's context carry the
generation with their hash. An edit that bypasses NetBox (SQL) moves the hash and not the generation;
one through NetBox moves both."""

from django.db import connection
from django.urls import reverse
from rest_framework import status
from utilities.testing import APITestCase

from unicop.models import Root

from .fixtures import make_device, make_site, root_of


def api(name, **kwargs):
    return reverse(f'plugins-api:unicop-api:{name}', kwargs=kwargs)


class CurrentHashTestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        cls.site = make_site('HashNow')
        cls.device = make_device(cls.site, 'hash-now-1')

    def setUp(self):
        super().setUp()
        self.root = root_of('site', self.site)

    def viewing_everything(self):
        """A snapshot is read whole by a token that may view all of it (docs/decisions/0048)."""
        self.user.is_superuser = True
        self.user.save()

    def read(self):
        response = self.client.get(api('root-current-hash', pk=self.root.pk), **self.header)
        self.assertHttpStatus(response, status.HTTP_200_OK)
        return response.json()

    def test_the_snapshots_hash_and_the_roots_generation(self):
        self.viewing_everything()
        snap = self.client.get(api('root-snapshot', pk=self.root.pk), **self.header).json()
        now = self.read()
        generation = Root.objects.get(pk=self.root.pk).hash_generation
        self.assertEqual(
            now, {'root': self.root.key, 'hash': snap['hash'], 'hash_generation': generation, 'settled': True}
        )
        self.assertEqual(snap['hash_generation'], generation)

    def test_sql_moves_the_hash_not_the_generation(self):
        self.viewing_everything()
        before = self.read()
        with connection.cursor() as cursor:
            cursor.execute('UPDATE dcim_device SET serial = %s WHERE id = %s', ['SQL-1', self.device.pk])
        bypassed = self.read()
        self.assertNotEqual(bypassed['hash'], before['hash'])
        self.assertEqual(bypassed['hash_generation'], before['hash_generation'])
        response = self.client.patch(
            reverse('dcim-api:device-detail', kwargs={'pk': self.device.pk}),
            {'serial': 'API-1'},
            format='json',
            **self.header,
        )
        self.assertHttpStatus(response, status.HTTP_200_OK)
        through_netbox = self.read()
        self.assertNotEqual(through_netbox['hash'], bypassed['hash'])
        self.assertGreater(through_netbox['hash_generation'], bypassed['hash_generation'])

    def test_the_leases_snapshot_carries_the_generation(self):
        self.viewing_everything()
        response = self.client.post(
            api('root-lease', pk=self.root.pk),
            {'holder': 'w', 'ttl_seconds': 60, 'context': True},
            format='json',
            **self.header,
        )
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
        snapshot = response.json()['snapshot']
        self.assertEqual(snapshot['hash_generation'], Root.objects.get(pk=self.root.pk).hash_generation)
        self.assertEqual(snapshot['hash'], self.read()['hash'])

    def test_refused_without_view_of_every_object(self):
        self.add_permissions('unicop.view_root')  # not the site, nor its device
        response = self.client.get(api('root-current-hash', pk=self.root.pk), **self.header)
        self.assertHttpStatus(response, status.HTTP_403_FORBIDDEN)

    def test_unsettled_while_a_custom_field_is_provisioning(self):
        """NetBox 4.7 backfills a large custom field in a background job committed in batches; while its
        status is not active, hashes may move with no generation: the answer says so."""
        from extras.models import CustomField

        self.viewing_everything()
        field = CustomField.objects.create(name='hash_now_cf', type='text')
        CustomField.objects.filter(pk=field.pk).update(status='provisioning')
        self.assertFalse(self.read()['settled'])
        CustomField.objects.filter(pk=field.pk).update(status='active')
        self.assertTrue(self.read()['settled'])
