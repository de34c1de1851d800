"""`unicop_bootstrap`: creates the Webhook (URL, secret, JSON content type) and one Event Rule for every
object type the catalogue covers (created/updated/deleted); a second run changes nothing; a changed URL
or secret updates the same objects; the secret never appears in the output; bad input is refused; it says
whether NetBox retries webhooks (RQ_RETRY_MAX) and warns when it does not."""

import tempfile
from io import StringIO
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from extras.models import EventRule, Webhook
from utilities.testing import TestCase

from unicop.catalogue import catalogue

SECRET = 'not-a-real-secret-0123456789'  # noqa: S105 -- test value


class BootstrapTestCase(TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.secret_file = Path(self.dir.name) / 'secret'
        self.secret_file.write_text(SECRET + '\n')

    def tearDown(self):
        self.dir.cleanup()

    def run_cmd(self, url='http://127.0.0.1:8080/webhooks/netbox', **kw):
        out = StringIO()
        call_command('unicop_bootstrap', url=url, secret_file=str(self.secret_file), stdout=out, **kw)
        return out.getvalue()

    def test_creates_then_idempotent(self):
        out = self.run_cmd()
        self.assertIn('webhook unicop-bridge: created', out)
        self.assertNotIn(SECRET, out)
        webhook = Webhook.objects.get(name='unicop-bridge')
        self.assertEqual(
            (webhook.payload_url, webhook.secret, webhook.http_content_type, webhook.http_method),
            ('http://127.0.0.1:8080/webhooks/netbox', SECRET, 'application/json', 'POST'),
        )
        rule = EventRule.objects.get(name='unicop-bridge')
        self.assertEqual(sorted(rule.event_types), ['object_created', 'object_deleted', 'object_updated'])
        self.assertEqual(rule.action_object, webhook)
        # The configured catalogue's types (the built-in kinds' are checked in test_catalogue).
        self.assertEqual(
            sorted(f'{t.app_label}.{t.model}' for t in rule.object_types.all()), catalogue().covered_types()
        )

        out = self.run_cmd()
        self.assertIn('webhook unicop-bridge: unchanged', out)
        self.assertIn('event rule unicop-bridge: unchanged', out)
        self.assertEqual(
            (
                Webhook.objects.filter(name='unicop-bridge').count(),
                EventRule.objects.filter(name='unicop-bridge').count(),
            ),
            (1, 1),
        )

    def test_updates_in_place(self):
        self.run_cmd()
        rule = EventRule.objects.get(name='unicop-bridge')
        rule.object_types.clear()
        self.secret_file.write_text('rotated-secret\n')
        out = self.run_cmd(url='http://bridge.example:9000/webhooks/netbox')
        self.assertIn('webhook unicop-bridge: updated', out)
        self.assertIn('event rule unicop-bridge: updated', out)
        webhook = Webhook.objects.get(name='unicop-bridge')
        self.assertEqual(
            (webhook.payload_url, webhook.secret),
            ('http://bridge.example:9000/webhooks/netbox', 'rotated-secret'),
        )
        self.assertEqual(rule.object_types.count(), len(catalogue().covered_types()))

    @override_settings(RQ_RETRY_MAX=20, RQ_RETRY_INTERVAL=[1, 2, 5])
    def test_reports_webhook_retries(self):
        self.assertIn(
            'webhook retries: up to 20 (RQ_RETRY_MAX), after [1, 2, 5] s (RQ_RETRY_INTERVAL)', self.run_cmd()
        )

    @override_settings(RQ_RETRY_MAX=0)
    def test_warns_without_webhook_retries(self):
        err = StringIO()
        out = self.run_cmd(stderr=err)
        self.assertNotIn('webhook retries', out)
        self.assertIn('webhook retries: off (RQ_RETRY_MAX = 0)', err.getvalue())

    def test_bad_input(self):
        with self.assertRaisesMessage(CommandError, '--url'):
            self.run_cmd(url='ftp://x')
        with self.assertRaisesMessage(CommandError, 'cannot read a secret'):
            call_command('unicop_bootstrap', url='http://x/', secret_file='/nonexistent', stdout=StringIO())  # noqa: S106 -- a path, not a secret
        self.secret_file.write_text('\n')
        with self.assertRaisesMessage(CommandError, 'holds no secret'):
            self.run_cmd()
