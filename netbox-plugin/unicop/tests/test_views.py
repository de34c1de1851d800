"""The UI: root list and detail (state, lease, recent runs), run detail (timeline), the UNICOP panel on
a site and a prefix page (root state, last run, AWX link), and freeze/unfreeze with a reason, refused
without the change permission."""

from django.test import override_settings
from django.urls import reverse
from ipam.models import Prefix
from utilities.testing import TestCase

from unicop.models import ReconciliationRun, Root

from .fixtures import make_site, root_of


@override_settings(EXEMPT_VIEW_PERMISSIONS=[], LOGIN_REQUIRED=True)
class UITestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.site = make_site('Athens')
        cls.root = root_of('site', cls.site)
        cls.failed_run = ReconciliationRun.objects.create(
            run_id='run-ui-1',
            root=cls.root,
            snapshot_hash='c' * 64,
            fencing_token=1,
            cause='change',
            state='failed',
            awx_job_type='job',
            awx_job_id=42,
            awx_job_url='https://awx.example/#/jobs/playbook/42',
            outcome_class='executor_unavailable',
            log_lines=[
                {
                    'ts': '2026-11-22T10:00:00Z',
                    'level': 'error',
                    'message': 'AWX unreachable',
                    'meta': {'try': 3},
                }
            ],
        )
        Root.objects.filter(pk=cls.root.pk).update(last_run=cls.failed_run, highest_token=1)

    def test_list_and_detail(self):
        # With every permission on both models: pages must not link to edit/delete views that do not exist.
        self.add_permissions(
            'unicop.view_root',
            'unicop.view_reconciliationrun',
            'unicop.change_root',
            'unicop.delete_root',
            'unicop.change_reconciliationrun',
            'unicop.delete_reconciliationrun',
        )
        response = self.client.get(reverse('plugins:unicop:root_list'))
        self.assertHttpStatus(response, 200)
        self.assertContains(response, self.root.key)
        response = self.client.get(self.root.get_absolute_url())
        self.assertHttpStatus(response, 200)
        for text in ('failed', 'run-ui-1', 'Highest token issued', 'Lease'):
            self.assertContains(response, text)
        response = self.client.get(self.failed_run.get_absolute_url())
        self.assertContains(response, 'AWX unreachable')
        self.assertContains(response, '{&quot;try&quot;: 3}')
        self.assertHttpStatus(self.client.get(reverse('plugins:unicop:reconciliationrun_list')), 200)

    def test_anchor_panels(self):
        self.add_permissions('unicop.view_root', 'dcim.view_site', 'ipam.view_prefix')
        response = self.client.get(self.site.get_absolute_url())
        self.assertHttpStatus(response, 200)
        self.assertContains(response, self.root.key)
        self.assertContains(response, 'https://awx.example/#/jobs/playbook/42')
        prefix = Prefix.objects.create(prefix='10.60.0.0/24')
        response = self.client.get(prefix.get_absolute_url())
        self.assertContains(response, f'prefix/{prefix.pk}')
        self.assertContains(response, 'none yet')

    def test_freeze_with_reason_needs_change(self):
        self.add_permissions('unicop.view_root')
        self.assertNotContains(self.client.get(self.root.get_absolute_url()), 'Freeze</a>')
        url = reverse('plugins:unicop:root_freeze', kwargs={'pk': self.root.pk})
        self.assertHttpStatus(self.client.post(url, {'reason': 'x'}), 404)
        self.add_permissions('unicop.change_root')
        response = self.client.get(self.root.get_absolute_url())
        self.assertContains(response, 'Freeze</a>')
        self.assertHttpStatus(self.client.post(url, {'reason': ''}), 200)  # form shown again
        self.assertFalse(Root.objects.get(pk=self.root.pk).frozen)
        response = self.client.post(url, {'reason': 'DC move'})
        self.assertRedirects(response, self.root.get_absolute_url(), fetch_redirect_response=False)
        root = Root.objects.get(pk=self.root.pk)
        self.assertEqual((root.frozen, root.frozen_reason, root.status), (True, 'DC move', 'frozen'))
        response = self.client.post(
            reverse('plugins:unicop:root_unfreeze', kwargs={'pk': self.root.pk}), {'reason': 'moved'}
        )
        self.assertFalse(Root.objects.get(pk=self.root.pk).frozen)
