"""Creates or updates the JSON custom field `unicop_policy` on the catalogue's anchor types, which holds a
root's policy overrides (docs/decisions/0062). Idempotent; unicop_bootstrap does the same."""

from django.core.management.base import BaseCommand

from unicop.roots import POLICY_FIELD, ensure_policy_field


class Command(BaseCommand):
    help = 'Create or update the custom field unicop_policy (per-root policy overrides) on the anchor types.'

    def handle(self, *args, **options):
        self.stdout.write(f'custom field {POLICY_FIELD}: {ensure_policy_field()}')
