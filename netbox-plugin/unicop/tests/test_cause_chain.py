"""The cause chain on runs (docs/decisions/0039): a run created with its intent id, change ids, NetBox
request ids, actor and changed object reads them back; a malformed one is refused 400 naming the field
(and nothing is stored); a failed run's class links to its runbook (runbooks.json; a class without an
entry, or no class, has none); the run page shows the chain with the changed object linked and the
run's log lines; the root page shows its runs most recent first with cause, actor and runbook link."""

from django.test import override_settings
from django.urls import reverse
from rest_framework import status
from utilities.testing import TestCase

from unicop import runbooks
from unicop.models import ReconciliationRun, Root

from .fixtures import make_site, root_of
from .test_api import HASH_A, RunWriteTestCase, api

INTENT = '019ad3f0-1111-7000-8000-000000000001'
CHANGE = '019ad3f0-2222-7000-8000-000000000002'
REQUEST = 'b3c1e2d4-5f60-4a7b-8c9d-0e1f2a3b4c5d'


class RunCauseChainAPITestCase(RunWriteTestCase):
    def chain(self, **overrides):
        return {
            'intent_id': INTENT,
            'change_ids': [CHANGE],
            'request_ids': [REQUEST],
            'actor': 'alice',
            'cause_event': 'updated',
            'cause_object_type': 'dcim.site',
            'cause_object_id': self.site.pk,
            **overrides,
        }

    def test_chain_written_and_read_back(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-c', token, **self.chain()), status.HTTP_201_CREATED)
        body = self.client.get(api('reconciliationrun-detail', run_id='run-c'), **self.header).json()
        self.assertEqual({k: body[k] for k in self.chain()}, self.chain())
        self.assertIsNone(body['runbook'])

    def test_chain_defaults_when_not_given(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-s', token, cause='sweep'), status.HTTP_201_CREATED)
        run = ReconciliationRun.objects.get(run_id='run-s')
        self.assertEqual(
            (run.intent_id, run.change_ids, run.request_ids, run.actor, run.cause_object_id),
            ('', [], [], '', None),
        )

    def test_malformed_chain_refused_naming_the_field(self):
        token = self.lease('w')
        cases = {
            'intent_id': 'not-a-uuid',
            'change_ids': ['019AD3F0-2222-7000-8000-000000000002'],
            'request_ids': ['r' * 101],
            'actor': 'x' * 151,
            'cause_event': 'renamed',
            'cause_object_type': 'Site',
            'cause_object_id': -1,
        }
        for field, value in cases.items():
            with self.subTest(field=field):
                response = self.create(f'run-bad-{field}', token, **self.chain(**{field: value}))
                self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
                self.assertEqual(set(response.json()), {field})
                self.assertFalse(ReconciliationRun.objects.filter(run_id=f'run-bad-{field}').exists())
        too_many = [CHANGE] * 101
        response = self.create('run-bad-many', token, **self.chain(change_ids=too_many))
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        self.assertIn('change_ids', response.json())

    def test_failed_run_links_its_runbook(self):
        token = self.lease('w')
        self.create('run-f', token, **self.chain())
        response = self.patch(
            'run-f', {'fencing_token': token, 'state': 'failed', 'outcome_class': 'executor_unavailable'}
        )
        self.assertHttpStatus(response, status.HTTP_200_OK)
        self.assertEqual(response.json()['runbook'], 'docs/runbooks/awx-unavailable.md')
        with override_settings(PLUGINS_CONFIG={'unicop': {'runbooks_url': 'https://docs.example/rb/'}}):
            body = self.client.get(api('reconciliationrun-detail', run_id='run-f'), **self.header).json()
        self.assertEqual(body['runbook'], 'https://docs.example/rb/awx-unavailable.md')


class RunbookMapTestCase(TestCase):
    def test_every_class_maps_to_a_file_name(self):
        self.assertEqual(runbooks.FAILURE_CLASS_RUNBOOKS['lease_lost'], 'worker-crash.md')
        self.assertEqual(runbooks.FAILURE_CLASS_RUNBOOKS['drift'], 'root-drifted.md')
        self.assertIsNone(runbooks.runbook_url('in_sync'))  # an outcome class, no failure
        self.assertIsNone(runbooks.runbook_url(''))
        for name in runbooks.FAILURE_CLASS_RUNBOOKS.values():
            self.assertRegex(name, r'^[a-z0-9-]+\.md$')


@override_settings(EXEMPT_VIEW_PERMISSIONS=[], LOGIN_REQUIRED=True)
class CauseChainPagesTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.site = make_site('Lisbon')
        cls.root = root_of('site', cls.site)
        common = {'root': cls.root, 'snapshot_hash': HASH_A, 'fencing_token': 1}
        cls.older = ReconciliationRun.objects.create(
            run_id='run-older', cause='sweep', state='succeeded', **common
        )
        cls.newer = ReconciliationRun.objects.create(
            run_id='run-newer',
            cause='change',
            state='failed',
            outcome_class='template_misconfigured',
            intent_id=INTENT,
            change_ids=[CHANGE],
            request_ids=[REQUEST],
            actor='alice',
            cause_event='updated',
            cause_object_type='dcim.site',
            cause_object_id=cls.site.pk,
            log_lines=[{'ts': '2026-12-01T22:00:00Z', 'level': 'info', 'message': 'launched AWX job 7'}],
            **common,
        )
        ReconciliationRun.objects.filter(pk=cls.older.pk).update(started=cls.newer.started.replace(year=2025))
        Root.objects.filter(pk=cls.root.pk).update(last_run=cls.newer, highest_token=1)

    def test_run_page_shows_the_chain_and_log(self):
        self.add_permissions('unicop.view_reconciliationrun', 'unicop.view_root', 'dcim.view_site')
        response = self.client.get(self.newer.get_absolute_url())
        self.assertHttpStatus(response, 200)
        for text in (INTENT, CHANGE, REQUEST, 'alice', 'dcim.site:', 'launched AWX job 7'):
            self.assertContains(response, text)
        self.assertContains(response, f'href="{self.site.get_absolute_url()}"')
        self.assertContains(response, 'href="docs/runbooks/template-misconfigured.md"')

    def test_changed_object_not_linked_without_view_permission(self):
        self.add_permissions('unicop.view_reconciliationrun', 'unicop.view_root')
        response = self.client.get(self.newer.get_absolute_url())
        self.assertContains(response, 'dcim.site:')
        self.assertNotContains(response, f'href="{self.site.get_absolute_url()}"')

    def test_root_page_timeline_most_recent_first(self):
        self.add_permissions('unicop.view_root', 'unicop.view_reconciliationrun')
        response = self.client.get(self.root.get_absolute_url())
        self.assertHttpStatus(response, 200)
        page = response.content.decode()
        self.assertLess(page.index('run-newer'), page.index('run-older'))
        self.assertIn('alice', page)
        self.assertIn('href="docs/runbooks/template-misconfigured.md"', page)
        self.assertIn(reverse('plugins:unicop:reconciliationrun', args=[self.newer.pk]), page)
