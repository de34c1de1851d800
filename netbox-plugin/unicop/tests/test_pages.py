"""Every page the plugin renders, one test each: the root and run lists, a root's and a run's detail,
the freeze and unfreeze forms, and the UNICOP panel on a site's and on a prefix's page. Each answers 200,
renders the plugin's own template where it has one, loaded from the directory of the `unicop` package
that is imported (so the templates ship with whatever install runs this: the editable one of
scripts/test-plugin, or the wheel of scripts/suites.d/35-plugin-wheel.sh), and shows the content that
template writes."""

import uuid
from pathlib import Path

from core.models import ObjectChange
from django.test import RequestFactory, override_settings
from django.urls import reverse
from ipam.models import Prefix
from netbox.context_managers import event_tracking
from utilities.testing import TestCase

import unicop
from unicop.models import ReconciliationRun, Rollout, Root

from .fixtures import make_site, root_of

PACKAGE_DIR = Path(unicop.__file__).resolve().parent


@override_settings(EXEMPT_VIEW_PERMISSIONS=[], LOGIN_REQUIRED=True)
class PluginPagesTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.site = make_site('Oslo')
        cls.root = root_of('site', cls.site)
        cls.last_run = ReconciliationRun.objects.create(
            run_id='run-page-1',
            root=cls.root,
            snapshot_hash='d' * 64,
            fencing_token=4,
            cause='sweep',
            state='succeeded',
            awx_job_type='job',
            awx_job_id=77,
            awx_job_url='https://awx.example/#/jobs/playbook/77',
            summary='AWX job 77 successful',
            log_lines=[{'ts': '2026-12-01T10:00:00Z', 'level': 'info', 'message': 'lease taken', 'meta': {}}],
        )
        Root.objects.filter(pk=cls.root.pk).update(last_run=cls.last_run, highest_token=4)
        cls.prefix = Prefix.objects.create(prefix='10.70.0.0/24')

    def setUp(self):
        super().setUp()
        self.add_permissions(
            'unicop.view_root',
            'unicop.change_root',
            'unicop.view_reconciliationrun',
            'dcim.view_site',
            'ipam.view_prefix',
        )

    def page(self, url, template, *texts):
        response = self.client.get(url)
        self.assertHttpStatus(response, 200)
        if template is not None:
            used = [t for t in response.templates if t.name == template]
            self.assertTrue(
                used, f'{template} not rendered; rendered: {[t.name for t in response.templates]}'
            )
            origin = Path(used[0].origin.name).resolve()
            self.assertTrue(
                origin.is_relative_to(PACKAGE_DIR), f'{template} loaded from {origin}, not from {PACKAGE_DIR}'
            )
        for text in texts:
            self.assertContains(response, text)
        return response

    def test_root_list(self):
        self.page(
            reverse('plugins:unicop:root_list'),
            None,
            self.root.key,
            f'prefix/{self.prefix.pk}',
            'Lease holder',
        )

    def test_root_detail(self):
        self.page(
            self.root.get_absolute_url(),
            'unicop/root.html',
            self.root.key,
            'Highest token issued',
            'Last reconciled hash',
            'Timeline',
            'run-page-1',
            'Freeze</a>',
        )

    def test_run_list(self):
        self.page(reverse('plugins:unicop:reconciliationrun_list'), None, 'run-page-1', 'AWX job')

    def test_run_detail(self):
        self.page(
            self.last_run.get_absolute_url(),
            'unicop/reconciliationrun.html',
            'run-page-1',
            'Fencing token',
            'Snapshot hash',
            'AWX job 77 successful',
            'https://awx.example/#/jobs/playbook/77',
        )

    def test_freeze_form(self):
        self.page(
            reverse('plugins:unicop:root_freeze', kwargs={'pk': self.root.pk}),
            'unicop/root_freeze.html',
            f'Stop automation for {self.root.key}',
            'name="reason"',
        )

    def test_unfreeze_form(self):
        Root.objects.filter(pk=self.root.pk).update(frozen=True, frozen_reason='DC move')
        self.page(
            reverse('plugins:unicop:root_unfreeze', kwargs={'pk': self.root.pk}),
            'unicop/root_freeze.html',
            f'Resume automation for {self.root.key}',
        )

    def test_site_panel(self):
        self.page(
            self.site.get_absolute_url(),
            'unicop/inc/anchor_panel.html',
            self.root.key,
            'https://awx.example/#/jobs/playbook/77',
            'AWX job 77',
        )

    def test_prefix_panel(self):
        self.page(
            self.prefix.get_absolute_url(),
            'unicop/inc/anchor_panel.html',
            f'prefix/{self.prefix.pk}',
            'none yet',
        )

    def test_changelog_with_a_rollout(self):
        """A rollout is change-logged (the gate creates it inside the resolver's API request; resume and
        abort save it), and NetBox links every change-logged object: the Change Log list (also the
        dashboard's widget) and the change's page render, linking the rollout to a URL that answers
        (review-A #3: it reversed a page that does not exist, so the Change Log answered 500)."""
        request = RequestFactory().post('/api/plugins/unicop/rollouts/')
        request.user, request.id = self.user, uuid.uuid4()
        with event_tracking(request):
            rollout = Rollout.objects.create(
                rollout_id='req-page-1', plan='1,rest', waves=[1, 1], roots_total=2
            )
        change = ObjectChange.objects.get(request_id=request.id)
        self.add_permissions('core.view_objectchange', 'unicop.view_rollout')
        changelog = self.page(reverse('core:objectchange_list'), None, 'req-page-1')
        self.page(change.get_absolute_url(), None, 'req-page-1')
        url = rollout.get_absolute_url()
        self.assertContains(changelog, f'href="{url}"')
        self.page(url, 'unicop/rollout.html', 'req-page-1')  # its page (decision 0069)
