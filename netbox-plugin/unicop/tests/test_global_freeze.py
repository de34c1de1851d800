"""The global freeze as NetBox shows it (docs/decisions/0062): the bridge's PUT of unicop.control's latest
global record (change permission and a write-enabled token needed, the body validated naming the
field), the last put kept whatever its `at` (the bridge puts in the topic's order), GET for viewers, and
the banner on every page while frozen — none once resumed, none for a user who may not see roots."""

from django.core.cache import cache
from django.urls import reverse
from users.models import Token
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

    def test_a_read_only_token_cannot_put(self):
        self.add_permissions('unicop.view_root', 'unicop.change_root')
        Token.objects.filter(pk=self.token.pk).update(write_enabled=False)
        self.assertHttpStatus(self.client.put(reverse(URL), FROZEN, format='json', **self.header), 403)
        self.assertHttpStatus(self.client.get(reverse(URL), **self.header), 200)
        self.assertEqual(self.client.get(reverse(URL), **self.header).json(), {'record': None})

    def test_the_last_put_is_kept_whatever_its_at(self):
        # The bridge puts the topic's records in the topic's order; `at` is the writer's clock: a
        # fail-safe freeze from a worker whose clock is behind the resume's is still the newer record.
        self.add_permissions('unicop.view_root', 'unicop.change_root')
        self.assertHttpStatus(self.client.put(reverse(URL), RESUMED, format='json', **self.header), 200)
        late = self.client.put(reverse(URL), FROZEN, format='json', **self.header)  # an earlier `at`
        self.assertEqual(late.json()['actor'], 'unicop')
        self.assertEqual(self.client.get(reverse(URL), **self.header).json()['record']['frozen'], True)
        # A future `at` pins nothing: the next put replaces it.
        self.client.put(reverse(URL), {**FROZEN, 'at': '2099-01-01T00:00:00Z'}, format='json', **self.header)
        self.client.put(reverse(URL), RESUMED, format='json', **self.header)
        self.assertEqual(
            self.client.get(reverse(URL), **self.header).json()['record']['reason'], RESUMED['reason']
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
