"""Per-root policy overrides (docs/decisions/0062): the anchor's JSON custom field `unicop_policy` merged
over the kind's policy and checked by the kind's own validator (catalogue.parse_policy); a bad override
gives no policy and an error naming the key (never the kind's policy in its place), in the API and on the
root's page; the kind's validation still refuses a bad PLUGINS_CONFIG with the same messages;
ensure_policy_field creates the custom field on every anchor type, idempotently."""

from core.models import ObjectType
from dcim.models import Site
from django.core.exceptions import ImproperlyConfigured
from django.test import TestCase
from django.urls import reverse
from extras.models import CustomField
from ipam.models import Prefix
from utilities.testing import APITestCase
from utilities.testing import TestCase as UtilitiesTestCase

from unicop.catalogue import DEFAULT_POLICY, load_catalogue, parse_catalogue
from unicop.roots import POLICY_FIELD, ensure_policy_field, root_policy

from .fixtures import make_site, root_of


def override(site, value):
    site.custom_field_data[POLICY_FIELD] = value
    site.save()
    return root_of('site', site)


class RootPolicyTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        ensure_policy_field()
        cls.site = make_site('Policy')

    def test_no_override_is_the_kinds_policy(self):
        policy, error = root_policy(root_of('site', self.site))
        self.assertIsNone(error)
        self.assertEqual(policy, DEFAULT_POLICY)

    def test_override_keys_win_the_others_are_the_kinds(self):
        load_catalogue({'site': {'policy': {'drift_interval_seconds': 600}}})
        self.addCleanup(load_catalogue)
        root = override(self.site, {'drift_mode': 'off', 'change_window': {'start': '22:00', 'end': '02:00'}})
        policy, error = root_policy(root)
        self.assertIsNone(error)
        self.assertEqual(policy['drift_mode'], 'off')
        self.assertEqual(policy['drift_interval_seconds'], 600)  # the kind's
        # Normalised by the same code as a kind's window.
        self.assertEqual(
            policy['change_window'],
            [
                {
                    'days': ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
                    'start': '22:00',
                    'end': '02:00',
                    'timezone': 'UTC',
                }
            ],
        )

    def test_bad_override_gives_no_policy_and_names_the_key(self):
        cases = [
            ({'drift_mode': 'sometimes'}, 'unicop_policy.drift_mode must be one of'),
            ({'approval_required': 'yes'}, 'unicop_policy.approval_required must be a boolean'),
            ({'run_timeout_seconds': 0}, 'unicop_policy.run_timeout_seconds must be a positive integer'),
            (
                {'drift_interval_seconds': 5},
                'unicop_policy.drift_interval_seconds must be an integer of at least',
            ),
            ({'change_window': {'start': '25:00', 'end': '01:00'}}, 'unicop_policy.change_window.start'),
            ({'retries': 3}, "unicop_policy: unknown keys ['retries']"),
            (['drift_mode', 'off'], 'unicop_policy must be a JSON object of policy keys, not list'),
        ]
        for value, message in cases:
            with self.subTest(value=value):
                root = override(self.site, value)
                policy, error = root_policy(root)
                self.assertIsNone(policy)
                self.assertIn(f'{root.key} {message}', error)

    def test_kind_policy_refused_as_before(self):
        with self.assertRaisesMessage(
            ImproperlyConfigured, 'PLUGINS_CONFIG unicop: root_kinds.site.policy.drift_mode must be one of'
        ):
            parse_catalogue({'site': {'policy': {'drift_mode': 'sometimes'}}})

    def test_policy_field_on_every_anchor_type_idempotent(self):
        field = CustomField.objects.get(name=POLICY_FIELD)
        self.assertEqual(field.type, 'json')
        self.assertEqual(
            set(field.object_types.values_list('pk', flat=True)),
            {ObjectType.objects.get_for_model(Site).pk, ObjectType.objects.get_for_model(Prefix).pk},
        )
        self.assertEqual(ensure_policy_field(), 'unchanged')
        field.object_types.set([ObjectType.objects.get_for_model(Site)])
        self.assertEqual(ensure_policy_field(), 'updated')
        self.assertEqual(field.object_types.count(), 2)


class RootPolicyAPITestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        ensure_policy_field()
        cls.site = make_site('PolicyAPI')

    def setUp(self):
        super().setUp()
        self.add_permissions('unicop.view_root', 'dcim.change_site', 'dcim.view_site')

    def test_override_through_the_sites_api_is_served_merged(self):
        url = reverse('dcim-api:site-detail', kwargs={'pk': self.site.pk})
        answer = self.client.patch(
            url, {'custom_fields': {POLICY_FIELD: {'drift_mode': 'remediate'}}}, format='json', **self.header
        )
        self.assertEqual(answer.status_code, 200, answer.content)
        root = root_of('site', self.site)
        body = self.client.get(
            reverse('plugins-api:unicop-api:root-detail', kwargs={'pk': root.pk}), **self.header
        ).json()
        self.assertIsNone(body['policy_error'])
        self.assertEqual(body['policy'], {**DEFAULT_POLICY, 'drift_mode': 'remediate'})

    def test_bad_override_served_as_an_error_not_the_kinds_policy(self):
        root = override(self.site, {'drift_mode': 'sometimes'})
        body = self.client.get(
            reverse('plugins-api:unicop-api:root-detail', kwargs={'pk': root.pk}), **self.header
        ).json()
        self.assertIsNone(body['policy'])
        self.assertIn(f'{root.key} unicop_policy.drift_mode must be one of', body['policy_error'])


class RootPolicyPagesTestCase(UtilitiesTestCase):
    """The root's page and the anchor's UNICOP panel say a bad override's error, naming the key."""

    @classmethod
    def setUpTestData(cls):
        ensure_policy_field()
        cls.good = make_site('PolicyPageGood')
        cls.bad = make_site('PolicyPageBad')
        override(cls.good, {'drift_mode': 'off'})
        override(cls.bad, {'drift_mode': 'sometimes'})

    def setUp(self):
        super().setUp()
        self.add_permissions('unicop.view_root', 'dcim.view_site')

    def test_bad_override_on_the_root_page_and_the_site_panel(self):
        root = root_of('site', self.bad)
        error = f'{root.key} unicop_policy.drift_mode must be one of'
        for url in (root.get_absolute_url(), self.bad.get_absolute_url()):
            with self.subTest(url=url):
                response = self.client.get(url)
                self.assertHttpStatus(response, 200)
                self.assertContains(response, error)
                self.assertContains(response, 'invalid</span>')
        # The class the workers end its runs with (decide()'s template step), not one that does not exist.
        page = self.client.get(root.get_absolute_url())
        self.assertContains(page, '(runs refused: template_misconfigured)')
        self.assertNotContains(page, 'invalid_policy')

    def test_good_override_shows_the_merged_policy_and_no_error(self):
        root = root_of('site', self.good)
        response = self.client.get(root.get_absolute_url())
        self.assertHttpStatus(response, 200)
        self.assertContains(response, '<code>drift_mode</code>: off')
        self.assertNotContains(response, 'invalid</span>')
        self.assertNotContains(self.client.get(self.good.get_absolute_url()), 'invalid</span>')
