"""Creates or updates NetBox's side of the change feed: one Webhook pointing at the UNICOP bridge (signed
with the secret, JSON body) and one Event Rule sending object_created/updated/deleted of every object type
the root catalogue covers (anchors and members) to it. Idempotent: a second run changes nothing and says
so. The secret is read from a file (never from the command line, never printed). It also says whether
NetBox retries a webhook the bridge did not accept (RQ_RETRY_MAX, RQ_RETRY_INTERVAL: configuration.py,
not something a command can set) and warns when it does not (docs/decisions/0036)."""

from pathlib import Path

from core.events import OBJECT_CREATED, OBJECT_DELETED, OBJECT_UPDATED
from core.models import ObjectType
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from extras.models import EventRule, Webhook
from netbox.config import get_config

from unicop.catalogue import catalogue
from unicop.roots import POLICY_FIELD, ensure_policy_field

EVENT_TYPES = [OBJECT_CREATED, OBJECT_UPDATED, OBJECT_DELETED]
DEFAULT_NAME = 'unicop-bridge'  # names the Webhook and the Event Rule; the key of idempotency


class Command(BaseCommand):
    help = 'Create or update the Webhook and Event Rule that feed NetBox changes to the UNICOP bridge.'

    def add_arguments(self, parser):
        parser.add_argument(
            '--url', required=True, help='bridge webhook URL, e.g. http://bridge:8080/webhooks/netbox'
        )
        parser.add_argument('--secret-file', required=True, help='file holding the HMAC secret (first line)')
        parser.add_argument(
            '--name', default=DEFAULT_NAME, help=f'webhook and event rule name ({DEFAULT_NAME})'
        )
        parser.add_argument(
            '--no-ssl-verify', action='store_true', help='do not verify the bridge TLS certificate'
        )

    def handle(self, *args, url, secret_file, name, no_ssl_verify=False, **options):
        try:
            secret = Path(secret_file).read_text().splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise CommandError(f'cannot read a secret from {secret_file}: {exc.__class__.__name__}') from None
        if not secret:
            raise CommandError(f'{secret_file} holds no secret')
        if not url.startswith(('http://', 'https://')):
            raise CommandError('--url must be an http(s) URL')

        with transaction.atomic():
            webhook_state = self._upsert(
                Webhook,
                name,
                {
                    'payload_url': url,
                    'http_method': 'POST',
                    'http_content_type': 'application/json',
                    'secret': secret,
                    'ssl_verification': not no_ssl_verify,
                    'body_template': '',
                    'additional_headers': '',
                    'description': 'UNICOP: NetBox changes to the bridge (unicop_bootstrap)',
                },
            )
            webhook = Webhook.objects.get(name=name)
            rule_state = self._upsert(
                EventRule,
                name,
                {
                    'event_types': EVENT_TYPES,
                    'enabled': True,
                    'conditions': None,
                    'action_type': 'webhook',
                    'action_object_type': ContentType.objects.get_for_model(Webhook),
                    'action_object_id': webhook.pk,
                    'description': 'UNICOP: every object type of the root catalogue (unicop_bootstrap)',
                },
            )
            rule = EventRule.objects.get(name=name)
            types = catalogue().covered_types()
            wanted = {ObjectType.objects.get_by_natural_key(*t.split('.')).pk for t in types}
            if set(rule.object_types.values_list('pk', flat=True)) != wanted:
                rule.object_types.set(wanted)
                rule_state = 'updated' if rule_state == 'unchanged' else rule_state
        self.stdout.write(f'webhook {name}: {webhook_state} ({url})')
        self.stdout.write(f'event rule {name}: {rule_state} ({", ".join(types)}; {", ".join(EVENT_TYPES)})')
        self.stdout.write(f'custom field {POLICY_FIELD}: {ensure_policy_field()}')
        self._report_retries()

    def _report_retries(self):
        """NetBox sends a webhook once unless RQ_RETRY_MAX is set: a change made while the bridge restarts,
        or answered 503 while Kafka is away, then reaches UNICOP only with the next sweep."""
        config = get_config()
        retry_max, interval = config.RQ_RETRY_MAX, config.RQ_RETRY_INTERVAL
        if retry_max:
            self.stdout.write(
                f'webhook retries: up to {retry_max} (RQ_RETRY_MAX), after {interval} s (RQ_RETRY_INTERVAL)'
            )
        else:
            self.stderr.write(
                'webhook retries: off (RQ_RETRY_MAX = 0): NetBox sends each webhook once, so a change '
                'the bridge does not accept (restarting, Kafka away) waits for the sweep; set '
                'RQ_RETRY_MAX and RQ_RETRY_INTERVAL in configuration.py (docs/decisions/0036)'
            )

    def _upsert(self, model, name, fields):
        obj = model.objects.filter(name=name).first()
        if obj is None:
            obj = model(name=name, **fields)
            obj.full_clean()
            obj.save()
            return 'created'
        changed = [k for k, v in fields.items() if getattr(obj, k) != v]
        if not changed:
            return 'unchanged'
        obj.snapshot()
        for k in changed:
            setattr(obj, k, fields[k])
        obj.full_clean()
        obj.save()
        return 'updated'
