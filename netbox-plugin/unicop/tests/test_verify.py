"""Post-run verification (docs/decisions/0066): the policy key `verify` — None by default, `{tags: "..."}` or
`{template: <id>}` kept as given, anything else refused at load naming the kind and the key (and a root's
`unicop_policy` override by the same validator) — and the run's `verify_job_id` (migration 0007): written
through the lean run write and served on the run."""

from django.core.exceptions import ImproperlyConfigured
from django.test import SimpleTestCase
from rest_framework import status
from utilities.testing import TestCase

from unicop.catalogue import DEFAULT_POLICY, InvalidPolicy, parse_catalogue, parse_policy
from unicop.models import ReconciliationRun

from .fixtures import make_site, root_of
from .test_api import RunWriteTestCase
from .test_lean_run_write import api

TEMPLATE_ID = 'root_kinds.site.policy.verify.template must be an AWX job template id'


def _kind_with(verify):
    return parse_catalogue({'site': {'policy': {'verify': verify}}})['site']


class VerifyPolicyTestCase(SimpleTestCase):
    def test_no_verification_by_default(self):
        self.assertIsNone(parse_catalogue({})['site'].policy['verify'])

    def test_tags_or_a_template_are_kept_as_given(self):
        for verify in ({'tags': 'verify'}, {'tags': 'verify,smoke'}, {'template': 12}):
            with self.subTest(verify=verify):
                self.assertEqual(_kind_with(verify).policy['verify'], verify)

    def test_a_bad_verify_is_refused_naming_the_kind_and_key(self):
        cases = [
            ('verify', 'root_kinds.site.policy.verify must be None, {"tags": "<job tags>"} or {"template"'),
            ({}, 'root_kinds.site.policy.verify must be None'),
            ({'tags': 'verify', 'template': 3}, 'root_kinds.site.policy.verify must be None'),
            ({'tag': 'verify'}, 'root_kinds.site.policy.verify must be None'),
            ({'tags': ''}, 'root_kinds.site.policy.verify.tags must be AWX job tags'),
            ({'tags': 'verify, smoke'}, 'root_kinds.site.policy.verify.tags must be AWX job tags'),
            ({'tags': 'a,,b'}, 'root_kinds.site.policy.verify.tags must be AWX job tags'),
            ({'tags': 'x' * 1025}, 'at most 1024 characters'),
            ({'tags': ['verify']}, 'root_kinds.site.policy.verify.tags must be AWX job tags'),
            (
                {'template': 'unicop-verify'},
                TEMPLATE_ID,
            ),
            ({'template': 0}, TEMPLATE_ID),
            ({'template': True}, TEMPLATE_ID),
        ]
        for verify, message in cases:
            with self.subTest(verify=verify), self.assertRaisesMessage(ImproperlyConfigured, message):
                _kind_with(verify)

    def test_a_root_override_is_checked_by_the_same_validator(self):
        with self.assertRaises(InvalidPolicy) as caught:
            parse_policy({**DEFAULT_POLICY, 'verify': {'tags': 7}}, 'site/7 unicop_policy')
        self.assertEqual(caught.exception.key, 'verify')
        self.assertIn('site/7 unicop_policy.verify.tags', str(caught.exception))


class VerifyJobIdTestCase(RunWriteTestCase):
    def write(self, run_id, body):
        return self.client.post(
            api('reconciliationrun-write', run_id=run_id), body, format='json', **self.header
        )

    def test_the_verify_job_id_is_written_and_served(self):
        token = self.lease('v')
        self.assertHttpStatus(self.create('run-v', token), status.HTTP_201_CREATED)
        self.assertIsNone(ReconciliationRun.objects.get(run_id='run-v').verify_job_id)
        body = {'fencing_token': token, 'state': 'launched', 'awx_job_type': 'job', 'awx_job_id': 7}
        self.assertHttpStatus(self.write('run-v', body), status.HTTP_200_OK)
        self.assertHttpStatus(
            self.write('run-v', {'fencing_token': token, 'verify_job_id': 8}), status.HTTP_200_OK
        )
        run = ReconciliationRun.objects.get(run_id='run-v')
        self.assertEqual((run.state, run.awx_job_id, run.verify_job_id), ('launched', 7, 8))
        served = self.client.get(api('reconciliationrun-detail', run_id=run.run_id), **self.header).json()
        self.assertEqual((served['awx_job_id'], served['verify_job_id']), (7, 8))

    def test_a_malformed_verify_job_id_is_refused_naming_the_field(self):
        token = self.lease('m')
        self.assertHttpStatus(self.create('run-vm', token), status.HTTP_201_CREATED)
        response = self.write('run-vm', {'fencing_token': token, 'verify_job_id': 'eight'})
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        self.assertIn('verify_job_id', response.json())
        self.assertIsNone(ReconciliationRun.objects.get(run_id='run-vm').verify_job_id)


class VerifyJobOnTheRunPageTestCase(TestCase):
    def test_the_run_page_links_the_verify_job(self):
        root = root_of('site', make_site('Verified'))
        run = ReconciliationRun.objects.create(
            run_id='run-verify-page',
            root=root,
            snapshot_hash='e' * 64,
            fencing_token=3,
            cause='change',
            state='failed',
            outcome_class='verify_failed',
            awx_job_type='job',
            awx_job_id=77,
            awx_job_url='https://awx.example/#/jobs/playbook/77/output',
            verify_job_id=78,
            summary='AWX job 77 successful; verification failed: AWX job 78 (verify) failed',
        )
        self.add_permissions('unicop.view_reconciliationrun', 'unicop.view_root', 'dcim.view_site')
        response = self.client.get(run.get_absolute_url())
        self.assertHttpStatus(response, 200)
        self.assertContains(response, 'Verify job')
        self.assertContains(response, '<a href="https://awx.example/#/jobs/playbook/78/output">job 78</a>')
        self.assertContains(response, 'verification failed: AWX job 78 (verify) failed')
        run.verify_job_id = None
        self.assertIsNone(run.verify_job_url)
