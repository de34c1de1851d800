"""The plugin skeleton inside a real NetBox: NetBox loads `unicop` as a plugin with the declared
configuration (name, verbose name, version, base URL, minimum NetBox version), lists it among the
installed plugins (registry, /api/status/, /api/plugins/installed-plugins/), and serves the
plugin's REST API root at /api/plugins/unicop/ to a token-authenticated client while refusing an
anonymous one."""

from django.apps import apps
from django.urls import reverse
from netbox.registry import registry
from rest_framework import status
from utilities.testing import APITestCase, TestCase

from unicop import UnicopConfig, __version__


class PluginRegistrationTestCase(TestCase):
    def test_plugin_is_installed(self):
        self.assertIn('unicop', registry['plugins']['installed'])

    def test_app_config(self):
        config = apps.get_app_config('unicop')
        self.assertIsInstance(config, UnicopConfig)
        self.assertEqual(config.name, 'unicop')
        self.assertEqual(config.verbose_name, 'UNICOP')
        self.assertEqual(config.base_url, 'unicop')
        self.assertEqual(config.min_version, '4.7.0')
        self.assertEqual(config.version, __version__)
        self.assertNotEqual(__version__, '0.0.0', 'the plugin is not installed as a distribution')


class PluginAPIRootTestCase(APITestCase):
    def test_api_root_url(self):
        self.assertEqual(reverse('plugins-api:unicop-api:api-root'), '/api/plugins/unicop/')

    def test_api_root_answers_with_token(self):
        response = self.client.get(reverse('plugins-api:unicop-api:api-root'), **self.header)
        self.assertHttpStatus(response, status.HTTP_200_OK)
        self.assertIsInstance(response.json(), dict)

    def test_api_root_refuses_anonymous(self):
        response = self.client.get(reverse('plugins-api:unicop-api:api-root'))
        self.assertHttpStatus(response, status.HTTP_403_FORBIDDEN)

    def test_listed_in_installed_plugins(self):
        # This NetBox endpoint is for superusers only.
        self.user.is_superuser = True
        self.user.save()
        response = self.client.get(reverse('plugins-api:plugins-list'), **self.header)
        self.assertHttpStatus(response, status.HTTP_200_OK)
        plugin = {p['package']: p for p in response.json()}.get('unicop')
        self.assertIsNotNone(plugin, response.json())
        self.assertEqual(plugin['name'], 'UNICOP')
        self.assertEqual(plugin['version'], __version__)

    def test_listed_in_status(self):
        response = self.client.get(reverse('api-status'), **self.header)
        self.assertHttpStatus(response, status.HTTP_200_OK)
        self.assertEqual(response.json()['plugins'].get('unicop'), __version__)
