"""Blast radius (docs/decisions/0065) on the plugin's side: the policy key `blast_radius` (None by default;
an object with max_changed_members >= 0 and/or max_changed_share 0..1, checked at load for a kind and in a
root's override alike); a run's member digests and blast-radius diff written with a run write (lean or
PATCH), each refused 400 naming the field when malformed; a gate decision written once, on a run the gate
holds (awaiting_approval, no AWX job) — a second one is refused."""

from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase, override_settings
from django.urls import reverse
from rest_framework import status
from utilities.testing import TestCase

from unicop.catalogue import parse_catalogue
from unicop.models import ReconciliationRun

from .fixtures import make_site, root_of
from .test_api import RunWriteTestCase

DIGEST = 'c' * 64
DIFF = {
    'baseline_run_id': 'run-base',
    'added': 1,
    'removed': 0,
    'changed': 2,
    'members': 4,
    'share': 0.75,
    'limit': {'max_changed_members': 1},
    'keys': ['ipam.prefix/7', 'ipam.prefix/8', 'ipam.prefix/9'],
}
DECISION = {
    'decision': 'approved',
    'by': 'alice',
    'sub': 'f1',
    'reason': 'planned',
    'at': '2026-12-02T21:00:00Z',
}


def _kind_with(limit):
    return parse_catalogue({'site': {'policy': {'blast_radius': limit}}})['site']


class BlastRadiusPolicyTestCase(SimpleTestCase):
    def test_no_limit_by_default(self):
        self.assertIsNone(parse_catalogue({})['site'].policy['blast_radius'])

    def test_a_valid_limit_is_kept(self):
        for limit in (
            {'max_changed_members': 0},
            {'max_changed_share': 0.5},
            {'max_changed_members': 3, 'max_changed_share': 1},
        ):
            with self.subTest(limit=limit):
                self.assertEqual(_kind_with(limit).policy['blast_radius'], limit)

    def test_a_bad_limit_is_refused_naming_the_kind(self):
        where = 'root_kinds.site.policy.blast_radius'
        cases = [
            (5, f'{where} must be None or an object'),
            ({}, f'{where} must be None or an object'),
            ({'max_changed': 1}, f"{where}: unknown keys ['max_changed']"),
            ({'max_changed_members': -1}, f'{where}.max_changed_members must be an integer of at least 0'),
            ({'max_changed_members': 1.5}, f'{where}.max_changed_members must be an integer'),
            ({'max_changed_members': True}, f'{where}.max_changed_members must be an integer'),
            ({'max_changed_share': 1.5}, f'{where}.max_changed_share must be a number from 0 to 1'),
            ({'max_changed_share': '0.5'}, f'{where}.max_changed_share must be a number from 0 to 1'),
            ({'max_changed_members': None}, f'{where} names no limit'),
        ]
        for limit, message in cases:
            with self.subTest(limit=limit), self.assertRaisesMessage(ImproperlyConfigured, message):
                _kind_with(limit)


class BlastRadiusRunFieldsTestCase(RunWriteTestCase):
    def lean(self, run_id, body):
        url = reverse('plugins-api:unicop-api:reconciliationrun-write', kwargs={'run_id': run_id})
        return self.client.post(url, body, format='json', **self.header)

    def test_digests_and_diff_are_written_and_served(self):
        token = self.lease('w')
        digests = {'ipam.prefix/7': DIGEST, 'dcim.site/1': DIGEST}
        self.assertHttpStatus(self.create('run-d', token, member_digests=digests), status.HTTP_201_CREATED)
        response = self.lean(
            'run-d', {'fencing_token': token, 'state': 'awaiting_approval', 'blast_radius': DIFF}
        )
        self.assertHttpStatus(response, status.HTTP_200_OK)
        body = self.client.get(
            reverse('plugins-api:unicop-api:reconciliationrun-detail', kwargs={'run_id': 'run-d'}),
            **self.header,
        ).json()
        self.assertEqual(
            (body['member_digests'], body['blast_radius'], body['gate_decision']), (digests, DIFF, None)
        )

    def test_malformed_digests_and_diff_are_refused_naming_the_field(self):
        token = self.lease('w')
        for field, value in (
            ('member_digests', {'prefix 7': DIGEST}),
            ('member_digests', {'ipam.prefix/7': 'nothex'}),
            ('member_digests', ['ipam.prefix/7']),
            ('blast_radius', {**DIFF, 'share': 2}),
            ('blast_radius', {**DIFF, 'keys': ['x'] * 21}),
        ):
            with self.subTest(field=field, value=value):
                response = self.create('run-bad', token, **{field: value})
                self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
                self.assertIn(field, response.json())
        self.assertFalse(ReconciliationRun.objects.filter(run_id='run-bad').exists())

    def test_a_gate_decision_is_written_once_on_a_held_run(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-g', token), status.HTTP_201_CREATED)
        refused = self.patch('run-g', {'fencing_token': token, 'gate_decision': DECISION})
        self.assertHttpStatus(refused, status.HTTP_400_BAD_REQUEST)
        self.assertIn('Only a run the blast-radius gate holds', str(refused.json()['gate_decision']))
        self.lean('run-g', {'fencing_token': token, 'state': 'awaiting_approval', 'blast_radius': DIFF})
        self.assertHttpStatus(self.patch('run-g', {'fencing_token': token, 'gate_decision': DECISION}), 200)
        twice = self.patch(
            'run-g', {'fencing_token': token, 'gate_decision': {**DECISION, 'decision': 'denied'}}
        )
        self.assertHttpStatus(twice, status.HTTP_400_BAD_REQUEST)
        self.assertIn('decided already', str(twice.json()['gate_decision']))
        self.assertEqual(ReconciliationRun.objects.get(run_id='run-g').gate_decision['decision'], 'approved')
        bad = self.patch(
            'run-g', {'fencing_token': token, 'gate_decision': {**DECISION, 'decision': 'maybe'}}
        )
        self.assertHttpStatus(bad, status.HTTP_400_BAD_REQUEST)


@override_settings(EXEMPT_VIEW_PERMISSIONS=[], LOGIN_REQUIRED=True)
class BlastRadiusRunPageTestCase(TestCase):
    def test_the_run_page_shows_the_diff_and_the_decision(self):
        self.add_permissions('unicop.view_reconciliationrun', 'unicop.view_root')
        root = root_of('site', make_site('Bergen'))
        run = ReconciliationRun.objects.create(
            run_id='run-held',
            root=root,
            snapshot_hash=DIGEST,
            fencing_token=1,
            cause='change',
            state='awaiting_approval',
            blast_radius=DIFF,
        )
        response = self.client.get(run.get_absolute_url())
        self.assertHttpStatus(response, 200)
        for text in (
            'Blast radius',
            '1 added, 0 removed, 2 changed of 4 (share 0.75)',
            'max_changed_members 1',
            '<code>ipam.prefix/9</code>',
            'waiting: <code>unicop approve|deny run-held</code>',
        ):
            self.assertContains(response, text)
        ReconciliationRun.objects.filter(pk=run.pk).update(gate_decision=DECISION)
        self.assertContains(
            self.client.get(run.get_absolute_url()), 'approved by alice at 2026-12-02T21:00:00Z: planned'
        )
