"""The global freeze as NetBox shows it (docs/decisions/0062): the bridge's PUT of unicop.control's latest
global record (change permission needed, the body validated naming the field), the newest record kept
(a late put of an older one does not roll it back), GET for viewers, and the banner on every page while
frozen — none once resumed, none for a user who may not see roots."""

from django.core.cache import cache
from django.urls import reverse
from utilities.testing import APITestCase, TestCase

from unicop import global_freeze

from .fixtures import make_site

URL = 'plugins-api:unicop-api:global_freeze'
FROZEN = {
    'frozen': True,
    'actor': 'unicop',
    'reason': 'fail-safe failed_roots: 21 roots',
    'at': '2026-12-02T12:00:00Z',
}
RESUMED = {'frozen': False, 'actor': 'alice', 'reason': 'fixed the template', 'at': '2026-12-02T12:30:00Z'}


class GlobalFreezeAPITestCase(APITestCase):
    def setUp(self):
        super().setUp()
        cache.delete(global_freeze._key())
        self.addCleanup(cache.delete, global_freeze._key())

    def test_put_needs_the_change_permission_and_a_valid_record(self):
        self.add_permissions('unicop.view_root')
        self.assertHttpStatus(self.client.put(reverse(URL), FROZEN, format='json', **self.header), 403)
        self.add_permissions('unicop.change_root')
        answer = self.client.put(reverse(URL), {**FROZEN, 'frozen': 'maybe'}, format='json', **self.header)
        self.assertHttpStatus(answer, 400)
        self.assertIn('frozen', answer.json())
        self.assertEqual(self.client.get(reverse(URL), **self.header).json(), {'record': None})

    def test_the_newest_record_is_kept(self):
        self.add_permissions('unicop.view_root', 'unicop.change_root')
        self.assertHttpStatus(self.client.put(reverse(URL), RESUMED, format='json', **self.header), 200)
        late = self.client.put(reverse(URL), FROZEN, format='json', **self.header)  # older: not kept
        self.assertEqual(late.json()['actor'], 'alice')
        self.assertEqual(self.client.get(reverse(URL), **self.header).json()['record']['frozen'], False)
        newer = {**FROZEN, 'at': '2026-12-02T13:00:00Z'}
        self.client.put(reverse(URL), newer, format='json', **self.header)
        self.assertEqual(
            self.client.get(reverse(URL), **self.header).json()['record']['reason'], FROZEN['reason']
        )


class GlobalFreezeBannerTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.site = make_site('BannerSite')

    def setUp(self):
        super().setUp()
        cache.delete(global_freeze._key())
        self.addCleanup(cache.delete, global_freeze._key())
        self.add_permissions('dcim.view_site')

    def put(self, state):
        from unicop.api.global_freeze import GlobalFreezeSerializer

        s = GlobalFreezeSerializer(data=state)
        s.is_valid(raise_exception=True)
        global_freeze.record(s.validated_data)

    def test_banner_on_pages_while_frozen_only_for_root_viewers(self):
        self.put(FROZEN)
        self.assertNotContains(self.client.get(self.site.get_absolute_url()), 'unicop-global-freeze')
        self.add_permissions('unicop.view_root')
        page = self.client.get(self.site.get_absolute_url())
        self.assertContains(page, 'automation frozen globally by unicop')
        self.assertContains(page, FROZEN['reason'])
        self.assertContains(self.client.get(reverse('plugins:unicop:root_list')), 'unicop-global-freeze')
        self.put(RESUMED)
        self.assertNotContains(self.client.get(self.site.get_absolute_url()), 'unicop-global-freeze')
