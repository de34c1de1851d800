"""Per-root policy overrides (docs/decisions/0062): the anchor's JSON custom field `unicop_policy` merged
over the kind's policy and checked by the kind's own validator (catalogue.parse_policy); a bad override
gives no policy and an error naming the key (never the kind's policy in its place), in the API and on the
root's page; the kind's validation still refuses a bad PLUGINS_CONFIG with the same messages;
ensure_policy_field creates the custom field on every anchor type, idempotently.

Tighten-only (docs/decisions/0068, policy_overrides.py): per key, an override that would loosen its kind's
governance (approval off, change window removed or widened, schema removed, blast radius raised) is
refused naming the key; tightening is served, with `overridden` saying which keys came from the root
(and a schema applied with the kind's, review B #10); PLUGINS_CONFIG override_may_loosen lets named keys
loosen; every policy key has an override rule."""

from core.models import ObjectType
from dcim.models import Site
from django.core.exceptions import ImproperlyConfigured
from django.test import TestCase, override_settings
from django.urls import reverse
from extras.models import CustomField
from ipam.models import Prefix
from jsonschema import Draft202012Validator
from utilities.testing import APITestCase
from utilities.testing import TestCase as UtilitiesTestCase

from unicop.catalogue import DEFAULT_POLICY, InvalidPolicy, load_catalogue, parse_catalogue, parse_policy
from unicop.policy_overrides import OVERRIDE_RULES, merge_override, parse_may_loosen
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
        self.assertEqual(
            body['policy'],
            {**DEFAULT_POLICY, 'drift_mode': 'remediate', 'overridden': {'drift_mode': 'override'}},
        )

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


def kind_policy(**keys):
    """A kind's policy as the catalogue keeps it: DEFAULT_POLICY with `keys` over it, parsed."""
    return parse_policy({**DEFAULT_POLICY, **keys}, 'root_kinds.site.policy')


WEEKDAYS_8_18 = {'days': ['mon', 'tue', 'wed', 'thu', 'fri'], 'start': '08:00', 'end': '18:00'}


class TightenOnlyTestCase(TestCase):
    """Each key's override rule (policy_overrides.OVERRIDE_RULES): loosening refused naming the key,
    tightening served and marked in `overridden`."""

    where = 'site/1 unicop_policy'

    def assertRefused(self, kind, override, key, message):
        with self.assertRaises(InvalidPolicy) as caught:
            merge_override(kind, override, self.where)
        self.assertEqual(caught.exception.key, key)
        self.assertIn(f'{self.where}.{message}', str(caught.exception))

    def test_every_policy_key_has_an_override_rule(self):
        # A key added to DEFAULT_POLICY without a rule here could not be overridden at all (refused).
        self.assertEqual(sorted(set(DEFAULT_POLICY) - set(OVERRIDE_RULES)), [])

    def test_approval_may_be_turned_on_not_off(self):
        self.assertRefused(
            kind_policy(approval_required=True),
            {'approval_required': False},
            'approval_required',
            'approval_required cannot be false: its kind requires approval',
        )
        policy = merge_override(kind_policy(), {'approval_required': True}, self.where)
        self.assertIs(policy['approval_required'], True)
        self.assertEqual(policy['overridden'], {'approval_required': 'override'})

    def test_change_window_may_be_added_or_narrowed_never_removed_or_widened(self):
        kind = kind_policy(change_window=WEEKDAYS_8_18)
        self.assertRefused(kind, {'change_window': None}, 'change_window', 'change_window cannot be null')
        widened = [
            {'days': ['sat'], 'start': '09:00', 'end': '12:00'},  # a day the kind has no window on
            {'days': ['mon'], 'start': '07:00', 'end': '09:00'},  # starts before the kind's
            {'days': ['fri'], 'start': '17:00', 'end': '01:00'},  # runs past it into the night
            {'start': '09:00', 'end': '12:00'},  # every day: the weekend too
        ]
        for window in widened:
            with self.subTest(window=window):
                self.assertRefused(kind, {'change_window': window}, 'change_window', 'change_window[0] (')
        # Another time zone cannot be compared in local time: refused, naming the kind's zones.
        self.assertRefused(
            kind,
            {'change_window': {**WEEKDAYS_8_18, 'timezone': 'Europe/Paris'}},
            'change_window',
            "change_window[0].timezone must be one of its kind's window time zones ['UTC']",
        )
        narrowed = {'days': ['mon', 'wed'], 'start': '09:00', 'end': '12:00'}
        policy = merge_override(kind, {'change_window': narrowed}, self.where)
        self.assertEqual(policy['change_window'][0]['days'], ['mon', 'wed'])
        self.assertEqual(policy['overridden'], {'change_window': 'override'})
        # No window on the kind (any time): any window narrows it.
        policy = merge_override(
            kind_policy(), {'change_window': {'days': ['sun'], 'start': '01:00', 'end': '02:00'}}, self.where
        )
        self.assertEqual(policy['change_window'][0]['days'], ['sun'])

    def test_windows_crossing_midnight_and_the_week_compare_by_the_minute(self):
        # The kind's Sunday night window runs into Monday 02:00; two kind windows together cover 10:00-14:00.
        kind = kind_policy(
            change_window=[
                {'days': ['sun'], 'start': '22:00', 'end': '02:00', 'timezone': 'Europe/Paris'},
                {'days': ['tue'], 'start': '10:00', 'end': '12:00', 'timezone': 'Europe/Paris'},
                {'days': ['tue'], 'start': '12:00', 'end': '14:00', 'timezone': 'Europe/Paris'},
            ]
        )
        inside = [
            {'days': ['mon'], 'start': '00:30', 'end': '01:30', 'timezone': 'Europe/Paris'},
            {'days': ['sun'], 'start': '23:00', 'end': '02:00', 'timezone': 'Europe/Paris'},
            {'days': ['tue'], 'start': '11:00', 'end': '13:30', 'timezone': 'Europe/Paris'},
        ]
        for window in inside:
            with self.subTest(window=window):
                merge_override(kind, {'change_window': window}, self.where)
        outside = [
            {'days': ['mon'], 'start': '01:30', 'end': '02:30', 'timezone': 'Europe/Paris'},
            {'days': ['tue'], 'start': '11:00', 'end': '14:01', 'timezone': 'Europe/Paris'},
        ]
        for window in outside:
            with self.subTest(window=window):
                self.assertRefused(kind, {'change_window': window}, 'change_window', 'change_window[0] (')

    def test_schema_added_or_applied_with_the_kinds_never_removed(self):
        # Each schema refers to its own $defs: both must still resolve once combined.
        kind_schema = {
            '$defs': {'n': {'type': 'integer', 'minimum': 1}},
            'type': 'object',
            'properties': {'count': {'$ref': '#/$defs/n'}},
        }
        root_schema = {
            '$schema': 'https://json-schema.org/draft/2020-12/schema',
            '$defs': {'n': {'type': 'integer', 'maximum': 5}},
            'type': 'object',
            'properties': {'count': {'$ref': '#/$defs/n'}},
            'required': ['count'],
        }
        self.assertRefused(
            kind_policy(schema=kind_schema), {'schema': None}, 'schema', 'schema cannot be null'
        )
        # The kind has none: the root's is the schema.
        policy = merge_override(kind_policy(), {'schema': root_schema}, self.where)
        self.assertEqual(policy['schema'], root_schema)
        self.assertEqual(policy['overridden'], {'schema': 'override'})
        # The kind has one: both apply.
        policy = merge_override(kind_policy(schema=kind_schema), {'schema': root_schema}, self.where)
        self.assertEqual(policy['overridden'], {'schema': 'kind+override'})
        validator = Draft202012Validator(policy['schema'])
        self.assertTrue(validator.is_valid({'count': 3}))
        self.assertFalse(validator.is_valid({'count': 0}))  # the kind's minimum
        self.assertFalse(validator.is_valid({'count': 6}))  # the root's maximum
        self.assertFalse(validator.is_valid({}))  # the root's required
        # The same schema as the kind's changes nothing.
        policy = merge_override(kind_policy(schema=kind_schema), {'schema': kind_schema}, self.where)
        self.assertEqual((policy['schema'], policy['overridden']), (kind_schema, {}))
        # Two resources with one $id cannot both apply.
        self.assertRefused(
            kind_policy(schema={**kind_schema, '$id': 'urn:x'}),
            {'schema': {**root_schema, '$id': 'urn:x'}},
            'schema',
            "schema.$id is its kind's schema's ('urn:x')",
        )

    def test_blast_radius_limits_only_lower(self):
        kind = kind_policy(blast_radius={'max_changed_members': 10, 'max_changed_share': 0.5})
        self.assertRefused(kind, {'blast_radius': None}, 'blast_radius', 'blast_radius cannot be null')
        self.assertRefused(
            kind,
            {'blast_radius': {'max_changed_members': 20, 'max_changed_share': 0.5}},
            'blast_radius',
            "blast_radius.max_changed_members (20) is above its kind's (10)",
        )
        self.assertRefused(
            kind,
            {'blast_radius': {'max_changed_members': 5}},
            'blast_radius',
            "blast_radius.max_changed_share cannot be left out: its kind's is 0.5",
        )
        policy = merge_override(
            kind, {'blast_radius': {'max_changed_members': 5, 'max_changed_share': 0.1}}, self.where
        )
        self.assertEqual(policy['blast_radius'], {'max_changed_members': 5, 'max_changed_share': 0.1})
        policy = merge_override(kind_policy(), {'blast_radius': {'max_changed_members': 0}}, self.where)
        self.assertEqual(policy['overridden'], {'blast_radius': 'override'})

    def test_how_the_root_is_run_is_free(self):
        kind = kind_policy(drift_mode='remediate')
        policy = merge_override(
            kind,
            {'drift_mode': 'off', 'drift_interval_seconds': 86400, 'run_timeout_seconds': 7200},
            self.where,
        )
        self.assertEqual((policy['drift_mode'], policy['run_timeout_seconds']), ('off', 7200))
        self.assertEqual(
            policy['overridden'],
            {
                'drift_interval_seconds': 'override',
                'drift_mode': 'override',
                'run_timeout_seconds': 'override',
            },
        )

    def test_the_kinds_validator_runs_first(self):
        # A value the kind could not have is refused by parse_policy's message, not a rule's.
        self.assertRefused(
            kind_policy(),
            {'approval_required': 'no'},
            'approval_required',
            'approval_required must be a boolean',
        )

    def test_override_may_loosen_lets_named_keys_loosen(self):
        kind = kind_policy(approval_required=True, change_window=WEEKDAYS_8_18)
        policy = merge_override(
            kind, {'approval_required': False}, self.where, frozenset({'approval_required'})
        )
        self.assertIs(policy['approval_required'], False)
        # Only the keys named.
        with self.assertRaises(InvalidPolicy):
            merge_override(kind, {'change_window': None}, self.where, frozenset({'approval_required'}))
        with self.assertRaisesMessage(
            ImproperlyConfigured, "override_may_loosen: unknown policy keys ['aproval']"
        ):
            parse_may_loosen(['aproval'])
        with self.assertRaisesMessage(
            ImproperlyConfigured, 'override_may_loosen must be a list of policy keys'
        ):
            parse_may_loosen('approval_required')


class TightenOnlyRootTestCase(TestCase):
    """The rules through a root (roots.root_policy): the API's policy_error path, and the setting read."""

    @classmethod
    def setUpTestData(cls):
        ensure_policy_field()
        cls.site = make_site('PolicyTighten')

    def setUp(self):
        load_catalogue({'site': {'policy': {'approval_required': True}}})
        self.addCleanup(load_catalogue)

    def test_loosening_override_gives_no_policy_and_names_the_key(self):
        root = override(self.site, {'approval_required': False})
        policy, error = root_policy(root)
        self.assertIsNone(policy)
        self.assertIn(f'{root.key} unicop_policy.approval_required cannot be false', error)

    def test_the_setting_lets_it_loosen(self):
        root = override(self.site, {'approval_required': False})
        with override_settings(PLUGINS_CONFIG={'unicop': {'override_may_loosen': ['approval_required']}}):
            policy, error = root_policy(root)
        self.assertIsNone(error)
        self.assertEqual(
            (policy['approval_required'], policy['overridden']), (False, {'approval_required': 'override'})
        )


class OverrideOriginPageTestCase(UtilitiesTestCase):
    """The root's page marks the keys its override set (review B #10: a schema's origin is said)."""

    @classmethod
    def setUpTestData(cls):
        ensure_policy_field()
        cls.site = make_site('PolicyOrigin')
        override(cls.site, {'schema': {'type': 'object'}, 'drift_mode': 'off'})

    def setUp(self):
        super().setUp()
        self.add_permissions('unicop.view_root', 'dcim.view_site')

    def test_overridden_keys_are_marked(self):
        page = self.client.get(root_of('site', self.site).get_absolute_url())
        self.assertHttpStatus(page, 200)
        self.assertContains(
            page, '<code>drift_mode</code>: off <span class="badge text-bg-info">root override</span>'
        )
        self.assertContains(page, 'root override</span>', count=2)
        self.assertNotContains(page, '<code>overridden</code>')


class TightenOnlyVerifyTestCase(TestCase):
    """A post-run verification (decision 0066) may be added, never removed or swapped."""

    where = 'site/1 unicop_policy'

    def test_verify_may_be_added_not_removed_or_changed(self):
        kind = kind_policy(verify={'tags': 'verify'})
        for value in (None, {'template': 12}, {'tags': 'smoke'}):
            with self.subTest(value=value):
                with self.assertRaises(InvalidPolicy) as caught:
                    merge_override(kind, {'verify': value}, self.where)
                self.assertEqual(caught.exception.key, 'verify')
                self.assertIn(f"{self.where}.verify cannot differ from its kind's", str(caught.exception))
        self.assertEqual(merge_override(kind, {'verify': {'tags': 'verify'}}, self.where)['overridden'], {})
        policy = merge_override(kind_policy(), {'verify': {'template': 12}}, self.where)
        self.assertEqual((policy['verify'], policy['overridden']), ({'template': 12}, {'verify': 'override'}))
