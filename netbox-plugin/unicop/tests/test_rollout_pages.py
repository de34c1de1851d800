"""NetBox's rollout pages (rollout_pages.py, docs/decisions/0069): the list (state, wave, members per
state, reason; filtered by state) and a rollout's page — the halted reason with the commands that decide
it, each wave with its members' states and whether it is current, each member's root, state and the run
its end came from, linked — rendered from the plugin's own template; the menu's Rollouts entry; no page
without unicop.view_rollout."""

from pathlib import Path

from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from utilities.testing import TestCase

import unicop
from unicop import rollouts
from unicop.models import ReconciliationRun, Rollout

from .fixtures import make_site, root_of

PACKAGE_DIR = Path(unicop.__file__).resolve().parent


@override_settings(EXEMPT_VIEW_PERMISSIONS=[], LOGIN_REQUIRED=True)
class RolloutPagesTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        sites = [make_site(f'Rollout page {i}') for i in range(5)]
        cls.keys = sorted(root_of('site', s).key for s in sites)
        # Halted: wave 1 (one root) failed, above the 40% threshold; wave 2 (two roots) held.
        rollouts.gate('req-halted', '1,rest', 0.4, 2, ['c1'], 'alice', [(k, {}) for k in cls.keys[:3]])
        root = next(r for r in (root_of('site', s) for s in sites) if r.key == cls.keys[0])
        cls.failed_run = ReconciliationRun.objects.create(
            run_id='run-rollout-page-1',
            root=root,
            snapshot_hash='e' * 64,
            fencing_token=2,
            cause='change',
            state='failed',
            outcome_class='job_failed',
        )
        rollouts.record_outcome(cls.keys[0], cls.failed_run.run_id, 'failed', 'job_failed', timezone.now())
        # Open: the other two roots, wave 1 released.
        rollouts.gate('req-open', '1,rest', 0.4, 1, ['c2'], 'bob', [(k, {}) for k in cls.keys[3:]])
        cls.halted = Rollout.objects.get(rollout_id='req-halted')

    def setUp(self):
        super().setUp()
        self.add_permissions('unicop.view_rollout', 'unicop.view_root', 'unicop.view_reconciliationrun')

    def page(self, url, template=None):
        response = self.client.get(url)
        self.assertHttpStatus(response, 200)
        if template:
            used = [t for t in response.templates if t.name == template]
            self.assertTrue(used, f'{template} not rendered')
            self.assertTrue(Path(used[0].origin.name).resolve().is_relative_to(PACKAGE_DIR))
        return response

    def test_list_shows_each_rollout_and_filters_by_state(self):
        response = self.page(reverse('plugins:unicop:rollout_list'))
        for text in ('req-halted', 'req-open', 'halted: wave 1 of 2: 1 of 1 runs failed', '1 of 2', 'held 2'):
            self.assertContains(response, text)
        self.assertContains(response, f'href="{self.halted.get_absolute_url()}"')
        halted_only = self.page(reverse('plugins:unicop:rollout_list') + '?state=halted')
        self.assertContains(halted_only, 'req-halted')
        self.assertNotContains(halted_only, 'req-open')

    def test_a_halted_rollout_page_says_why_and_shows_waves_and_members(self):
        response = self.page(self.halted.get_absolute_url(), 'unicop/rollout.html')
        self.assertContains(response, 'halted: wave 1 of 2: 1 of 1 runs failed (100%, threshold 40%)')
        self.assertContains(response, 'unicop rollout resume req-halted')
        # Waves: the first (failed 1) current, the second (held 2) waiting.
        self.assertContains(response, 'failed 1')
        self.assertContains(response, 'held 2')
        self.assertContains(response, '<td class="rollout-wave-where">current</td>', html=False)
        self.assertContains(response, '<td class="rollout-wave-where">waiting</td>', html=False)
        # Members: each root linked; the failed one's run linked, with its outcome class.
        for key in self.keys[:3]:
            self.assertContains(response, key)
        self.assertContains(response, f'href="{self.failed_run.get_absolute_url()}"')
        self.assertContains(response, 'job_failed')

    def test_menu_has_rollouts(self):
        response = self.page(reverse('plugins:unicop:root_list'))
        self.assertContains(response, f'href="{reverse("plugins:unicop:rollout_list")}"')

    def test_no_page_without_the_view_permission(self):
        self.user.user_permissions.clear()
        self.user.object_permissions.all().delete() if hasattr(self.user, 'object_permissions') else None
        self.add_permissions('unicop.view_root')
        self.assertHttpStatus(self.client.get(reverse('plugins:unicop:rollout_list')), 403)
        self.assertHttpStatus(self.client.get(self.halted.get_absolute_url()), 403)
