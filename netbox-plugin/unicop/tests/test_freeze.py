"""Freezing a root (freeze.py) called with plain values — the branches the REST and page tests cannot
reach, since both need a logged-in user and a reason of at most 500 characters: a freeze by no user is
journalled with no author; an unfreeze without a reason says so and leaves no changelog message; a
reason the root refuses (over 500 characters) changes nothing and journals nothing."""

from django.contrib.auth.models import AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.test import TestCase
from extras.models import JournalEntry

from unicop.freeze import set_frozen
from unicop.models import Root

from .fixtures import make_site, root_of


class FreezeTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.site = make_site('Ostrava')

    def setUp(self):
        self.root = root_of('site', self.site)

    def journal(self):
        root_type = ContentType.objects.get_for_model(Root)
        return JournalEntry.objects.filter(assigned_object_type=root_type, assigned_object_id=self.root.pk)

    def test_freeze_and_unfreeze_by_no_user(self):
        set_frozen(self.root, True, 'audit', AnonymousUser())
        stored = Root.objects.get(pk=self.root.pk)
        self.assertEqual((stored.frozen, stored.frozen_reason), (True, 'audit'))
        self.assertEqual(self.root._changelog_message, 'Frozen: audit')
        set_frozen(self.root, False, '', AnonymousUser())
        stored = Root.objects.get(pk=self.root.pk)
        self.assertEqual((stored.frozen, stored.frozen_reason), (False, ''))
        self.assertIsNone(self.root._changelog_message)
        self.assertEqual(
            list(self.journal().order_by('pk').values_list('kind', 'comments', 'created_by')),
            [
                ('warning', 'Frozen by AnonymousUser: audit', None),
                ('info', 'Unfrozen by AnonymousUser: (no reason given)', None),
            ],
        )

    def test_refused_reason_changes_nothing(self):
        with self.assertRaises(ValidationError) as caught:
            set_frozen(self.root, True, 'x' * 501, AnonymousUser())
        self.assertIn('frozen_reason', caught.exception.message_dict)
        stored = Root.objects.get(pk=self.root.pk)
        self.assertEqual((stored.frozen, stored.frozen_reason), (False, ''))
        self.assertFalse(self.journal().exists())
