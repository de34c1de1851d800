"""Drift runs in the plugin (docs/decisions/0054): a run's mode (apply by default, check for a drift check;
refused when unknown or changed later, naming the field); a check run, succeeded or drifted, never moves
the root's last reconciled hash and stamps the root's last drift check; an apply run moves the hash and
stamps nothing; a drifted run (reachable from launched) shows its root drifted, not failed; the causes of
drift runs are accepted; the kind policy's drift_interval_seconds is validated."""

from django.core.exceptions import ImproperlyConfigured
from rest_framework import status
from utilities.testing import TestCase

from unicop import leases
from unicop.catalogue import DEFAULT_POLICY, parse_catalogue
from unicop.models import ReconciliationRun, Root

from .test_api import HASH_A, HASH_B, RunWriteTestCase, api


class RunModeTestCase(RunWriteTestCase):
    def fresh_root(self):
        return Root.objects.get(pk=self.root.pk)

    def end(self, run_id, token, state, outcome_class=''):
        for step in ('launched', state):
            body = {'fencing_token': token, 'state': step}
            if step == state:
                body['outcome_class'] = outcome_class
            self.assertHttpStatus(self.patch(run_id, body), status.HTTP_200_OK)

    def test_mode_defaults_to_apply_and_reads_back(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-a', token), status.HTTP_201_CREATED)
        self.assertHttpStatus(self.create('run-c', token, mode='check', cause='drift_check'), 201)
        got = {r.run_id: r.mode for r in ReconciliationRun.objects.all()}
        self.assertEqual(got, {'run-a': 'apply', 'run-c': 'check'})
        body = self.client.get(api('reconciliationrun-detail', run_id='run-c'), **self.header).json()
        self.assertEqual((body['mode'], body['cause']), ('check', 'drift_check'))

    def test_unknown_mode_refused_naming_the_field(self):
        token = self.lease('w')
        response = self.create('run-x', token, mode='dry')
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        self.assertIn('mode', response.json())
        self.assertFalse(ReconciliationRun.objects.exists())

    def test_mode_never_changes(self):
        token = self.lease('w')
        self.create('run-c', token, mode='check', cause='drift_check')
        response = self.patch('run-c', {'fencing_token': token, 'mode': 'apply'})
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        self.assertIn('mode', response.json())
        self.assertEqual(ReconciliationRun.objects.get(run_id='run-c').mode, 'check')

    def test_check_run_in_sync_keeps_the_reconciled_hash_and_stamps_the_check(self):
        # The run carries HASH_A; the root was reconciled at HASH_B: a check that moved the hash would show.
        Root.objects.filter(pk=self.root.pk).update(last_reconciled_hash=HASH_B)
        token = self.lease('w')
        self.create('run-c', token, mode='check', cause='drift_check')
        self.end('run-c', token, 'succeeded', 'in_sync')
        root = self.fresh_root()
        self.assertEqual(root.last_reconciled_hash, HASH_B)  # HASH_A was checked, not applied
        self.assertEqual(root.last_run.run_id, 'run-c')
        self.assertIsNotNone(root.last_drift_check)
        self.assertEqual(root.last_drift_check, root.last_run.finished)

    def test_apply_run_moves_the_hash_and_stamps_no_check(self):
        token = self.lease('w')
        self.create('run-a', token)
        self.end('run-a', token, 'succeeded')
        root = self.fresh_root()
        self.assertEqual(root.last_reconciled_hash, HASH_A)
        self.assertIsNone(root.last_drift_check)

    def test_drifted_run_shows_the_root_drifted_not_failed(self):
        Root.objects.filter(pk=self.root.pk).update(
            last_reconciled_hash=HASH_A, current_hash=HASH_A, hash_dirty=False
        )
        token = self.lease('w')
        self.create('run-c', token, mode='check', cause='drift_check')
        self.end('run-c', token, 'drifted', 'drift')
        leases.release(self.root.pk, token)
        root = self.fresh_root()
        self.assertEqual(root.last_run.state, 'drifted')
        self.assertEqual(root.status, 'drifted')
        body = self.client.get(api('root-detail', pk=self.root.pk), **self.header).json()
        self.assertEqual(body['status'], 'drifted')
        self.assertEqual(body['last_run']['mode'], 'check')
        self.assertIsNotNone(body['last_drift_check'])

    def test_drifted_only_from_a_started_run(self):
        token = self.lease('w')
        self.create('run-q', token, state='queued', mode='check', cause='drift_check')
        response = self.patch('run-q', {'fencing_token': token, 'state': 'drifted'})
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertNotIn('drifted', response.json()['allowed'])

    def test_remediation_cause_accepted(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-r', token, cause='drift'), status.HTTP_201_CREATED)
        self.assertEqual(ReconciliationRun.objects.get(run_id='run-r').mode, 'apply')


class DriftPolicyTestCase(TestCase):
    def test_default_interval(self):
        self.assertEqual(DEFAULT_POLICY['drift_interval_seconds'], 3600)
        policy = parse_catalogue({'site': {'policy': {'drift_interval_seconds': 600}}})['site'].policy
        self.assertEqual(policy['drift_interval_seconds'], 600)
        self.assertEqual(parse_catalogue({})['site'].policy['drift_interval_seconds'], 3600)

    def test_bad_interval_refused_naming_the_key(self):
        for value in (0, 59, -5, '3600', True, 1.5, None):
            with self.subTest(value=value), self.assertRaises(ImproperlyConfigured) as caught:
                parse_catalogue({'site': {'policy': {'drift_interval_seconds': value}}})
            self.assertIn('root_kinds.site.policy.drift_interval_seconds', str(caught.exception))
