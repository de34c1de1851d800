"""Issue #18 item 5, snapshots and NetBox object permissions (docs/decisions/0048): a snapshot is read
whole or not at all. A token whose view permissions — NetBox object permissions with their constraints,
as `restrict(user, 'view')` applies them — hide any object of a root's snapshot (a member, the anchor,
an object a member's foreign key names) gets 403 from `GET roots/{id}/snapshot/` and from a lease asked
with `context: true` (whose lease is then given back), and the answer shows nothing of the hidden
object. A token allowed to view every object gets the same snapshot and hash as before."""

from core.models import ObjectType
from dcim.models import DeviceRole
from django.urls import reverse
from ipam.models import IPAddress, IPRange, Prefix
from netaddr import IPNetwork
from rest_framework import status
from users.models import ObjectPermission
from utilities.testing import APITestCase

from unicop.models import Root
from unicop.snapshot import read_snapshot

from .fixtures import make_device, make_site, root_of

PREFIX_VIEWS = ('ipam.view_prefix', 'ipam.view_ipaddress', 'ipam.view_iprange')
SITE_VIEWS = (
    'dcim.view_site',
    'dcim.view_device',
    'dcim.view_rack',
    'ipam.view_vlan',
    'dcim.view_devicetype',
    'dcim.view_devicerole',
)


def api(name, **kwargs):
    return reverse(f'plugins-api:unicop-api:{name}', kwargs=kwargs)


class SnapshotPermissionTestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        cls.prefix = Prefix.objects.create(prefix='10.48.0.0/24')
        cls.public = IPAddress.objects.create(address='10.48.0.10/24', dns_name='public.example.net')
        cls.hidden = IPAddress.objects.create(address='10.48.0.66/24', dns_name='hidden.example.net')
        IPRange.objects.create(
            start_address=IPNetwork('10.48.0.100/24'), end_address=IPNetwork('10.48.0.110/24')
        )
        cls.site = make_site('Lisbon')
        cls.device = make_device(cls.site, 'edge48')

    def setUp(self):
        super().setUp()
        self.add_permissions('unicop.view_root', 'unicop.change_root')

    def constrained(self, name, model, constraints):
        """A view permission on `model` for the test user, limited by `constraints`."""
        permission = ObjectPermission.objects.create(name=name, actions=['view'], constraints=constraints)
        permission.object_types.add(ObjectType.objects.get_for_model(model))
        permission.users.add(self.user)

    def snapshot(self, root):
        return self.client.get(api('root-snapshot', pk=root.pk), **self.header)

    def test_a_token_allowed_to_view_every_object_gets_the_whole_snapshot(self):
        self.add_permissions(*PREFIX_VIEWS)
        root = root_of('prefix', self.prefix)
        response = self.snapshot(root)
        self.assertHttpStatus(response, status.HTTP_200_OK)
        snap, digest = read_snapshot(Root.objects.get(pk=root.pk))
        self.assertEqual((response.json()['snapshot'], response.json()['hash']), (snap, digest))
        self.assertIn(
            self.hidden.pk, [m['id'] for m in snap['members'] if m['object_type'] == 'ipam.ipaddress']
        )

    def test_a_member_hidden_by_a_constraint_refuses_the_snapshot(self):
        self.add_permissions('ipam.view_prefix', 'ipam.view_iprange')
        self.constrained('public addresses only', IPAddress, {'dns_name__startswith': 'public'})
        response = self.snapshot(root_of('prefix', self.prefix))
        self.assertHttpStatus(response, status.HTTP_403_FORBIDDEN)
        self.assertNotIn('hidden.example.net', response.content.decode())
        self.assertNotIn('10.48.0.66', response.content.decode())
        self.assertNotIn('snapshot', response.json())

    def test_a_member_type_without_view_permission_refuses_the_snapshot(self):
        self.add_permissions('ipam.view_prefix', 'ipam.view_ipaddress')  # no ipam.view_iprange
        self.assertHttpStatus(self.snapshot(root_of('prefix', self.prefix)), status.HTTP_403_FORBIDDEN)

    def test_a_hidden_anchor_refuses_the_snapshot(self):
        self.add_permissions('ipam.view_ipaddress', 'ipam.view_iprange')
        self.constrained('other prefixes', Prefix, {'prefix': '192.0.2.0/24'})
        self.assertHttpStatus(self.snapshot(root_of('prefix', self.prefix)), status.HTTP_403_FORBIDDEN)

    def test_an_object_a_member_names_hidden_refuses_the_snapshot(self):
        # Every member visible, but the device's role (shown by name in the snapshot) is not.
        self.add_permissions(*[p for p in SITE_VIEWS if p != 'dcim.view_devicerole'])
        self.constrained('other roles', DeviceRole, {'slug': 'core'})
        root = root_of('site', self.site)
        response = self.snapshot(root)
        self.assertHttpStatus(response, status.HTTP_403_FORBIDDEN)
        self.assertNotIn('edge48', response.content.decode())
        # With the role visible too, the same token reads it.
        self.add_permissions('dcim.view_devicerole')
        self.assertHttpStatus(self.snapshot(root), status.HTTP_200_OK)

    def test_a_lease_with_context_is_refused_and_given_back(self):
        self.add_permissions(*[p for p in SITE_VIEWS if p != 'dcim.view_device'])
        root = root_of('site', self.site)
        body = {'holder': 'restricted', 'ttl_seconds': 60, 'context': True}
        response = self.client.post(api('root-lease', pk=root.pk), body, format='json', **self.header)
        self.assertHttpStatus(response, status.HTTP_403_FORBIDDEN)
        self.assertNotIn('edge48', response.content.decode())
        root.refresh_from_db()
        self.assertFalse(root.lease_live(), 'the lease taken for the refused context was released')
        # Without context nothing of the snapshot is given: the lease itself is the token's to take.
        plain = {'holder': 'restricted', 'ttl_seconds': 60}
        response = self.client.post(api('root-lease', pk=root.pk), plain, format='json', **self.header)
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
