"""The run domain (runs.py) called with plain values, and how the API turns its errors into answers —
the branches the REST tests (test_api.py) cannot reach: a journal entry the serializer let through but
JournalEntry refuses (InvalidJournal with its messages, then 400 {"journal": [...]}); a refused write
never calls `save`; an update re-reads the run's state under the root's lock (a stale in-memory run
cannot move a run that ended meanwhile); a write of an older run leaves the root's last run alone."""

from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.test import TestCase
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import ValidationError

from unicop import leases, runs
from unicop.api.views import DomainErrorMixin
from unicop.models import ReconciliationRun, Root
from unicop.run_states import RunStateConflict

from .fixtures import make_site, root_of

HASH = 'b' * 64


class Saves:
    """The `save` a view passes, as the serializer does it: creates the run, or sets the written fields
    on it and saves it; counts the calls."""

    def __init__(self, root, run=None, **fields):
        self.root, self.run, self.fields, self.calls = root, run, fields, 0

    def __call__(self):
        self.calls += 1
        if self.run is None:
            self.run = ReconciliationRun.objects.create(
                root=self.root,
                snapshot_hash=HASH,
                fencing_token=self.root.highest_token,
                cause='change',
                **self.fields,
            )
        else:
            for name, value in self.fields.items():
                setattr(self.run, name, value)
            self.run.save()
        return self.run


class RunDomainTestCase(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.site = make_site('Brno')

    def setUp(self):
        self.user = AnonymousUser()
        self.root = root_of('site', self.site)
        self.token = leases.acquire(self.root.pk, 'w', 60).lease_token
        self.root.refresh_from_db()

    def create(self, run_id, state='leased', **fields):
        save = Saves(self.root, run_id=run_id, state=state, **fields)
        return runs.create_run(self.root.pk, self.token, state, None, self.user, save)

    def test_journal_refused_by_journal_entry_is_a_domain_error(self):
        with self.assertRaises(runs.InvalidJournal) as caught:
            runs.journal_entry(self.root, {'kind': 'shout', 'comments': 'x'}, self.user)
        self.assertEqual(caught.exception.status_code, 400)
        self.assertTrue(any("'shout'" in m for m in caught.exception.messages), caught.exception.messages)
        self.assertIsNone(runs.journal_entry(self.root, None, self.user))
        entry = runs.journal_entry(self.root, {'kind': 'info', 'comments': 'ok'}, self.user)
        self.assertEqual((entry.pk, entry.assigned_object, entry.created_by), (None, self.site, None))

    def test_invalid_journal_refuses_the_whole_write(self):
        save = Saves(self.root, run_id='run-j', state='leased')
        with self.assertRaises(runs.InvalidJournal):
            journal = {'kind': 'shout', 'comments': 'x'}
            runs.create_run(self.root.pk, self.token, 'leased', journal, self.user, save)
        self.assertEqual(save.calls, 0)
        self.assertFalse(ReconciliationRun.objects.exists())

    def test_fence_refuses_before_save(self):
        save = Saves(self.root, run_id='run-f', state='leased')
        with self.assertRaises(leases.LeaseConflict):
            runs.create_run(self.root.pk, self.token + 1, 'leased', None, self.user, save)
        self.assertEqual(save.calls, 0)

    def test_create_without_state_takes_the_models_default(self):
        save = Saves(self.root, run_id='run-d')
        run = runs.create_run(self.root.pk, self.token, None, None, self.user, save)
        self.assertEqual((save.calls, run.state), (1, ReconciliationRun._meta.get_field('state').default))

    def test_update_rereads_the_state_under_the_lock(self):
        stale = self.create('run-s')
        ReconciliationRun.objects.filter(pk=stale.pk).update(state='succeeded')
        self.assertEqual(stale.state, 'leased')
        save = Saves(self.root, run=stale)
        with self.assertRaises(RunStateConflict) as caught:
            runs.update_run(stale, self.token, 'running', None, self.user, save)
        self.assertEqual((caught.exception.state, caught.exception.allowed, save.calls), ('succeeded', [], 0))

    def test_update_without_state_keeps_it(self):
        run = self.create('run-k')
        save = Saves(self.root, run=run, summary='launched job 7')
        runs.update_run(run, self.token, None, None, self.user, save)
        run.refresh_from_db()
        self.assertEqual((save.calls, run.state, run.summary), (1, 'leased', 'launched job 7'))

    def test_older_run_leaves_last_run_and_records_its_outcome(self):
        newer = self.create('run-new')
        older = self.create('run-old', started=timezone.now() - timedelta(hours=1))
        self.assertEqual(Root.objects.get(pk=self.root.pk).last_run_id, newer.pk)
        save = Saves(self.root, run=older, state='succeeded')
        runs.update_run(older, self.token, 'succeeded', None, self.user, save)
        root = Root.objects.get(pk=self.root.pk)
        self.assertEqual((root.last_run_id, root.last_reconciled_hash), (newer.pk, HASH))
        self.assertIsNotNone(ReconciliationRun.objects.get(pk=older.pk).finished)


class PassThrough:
    def handle_exception(self, exc):
        return exc


class Answering(DomainErrorMixin, PassThrough):
    """The mixin over a view that answers with the exception it is handed."""


class DomainErrorAnswersTestCase(TestCase):
    """DomainErrorMixin: each domain error becomes its HTTP answer; other errors pass through."""

    def test_invalid_journal_is_a_400_on_journal(self):
        answer = Answering().handle_exception(runs.InvalidJournal(['bad kind', 'too long']))
        self.assertIsInstance(answer, ValidationError)
        self.assertEqual(answer.status_code, status.HTTP_400_BAD_REQUEST)
        self.assertEqual(answer.detail, {'journal': ['bad kind', 'too long']})

    def test_conflicts_are_409_with_their_body(self):
        root = Root(key='site/1', highest_token=3, frozen=True)
        answer = Answering().handle_exception(leases.LeaseConflict('frozen', root))
        self.assertEqual((answer.status_code, answer.data['highest_token']), (409, 3))
        answer = Answering().handle_exception(RunStateConflict('final', 'failed', []))
        body = {'detail': 'final', 'state': 'failed', 'allowed': []}
        self.assertEqual((answer.status_code, answer.data), (409, body))

    def test_other_errors_pass_through(self):
        error = KeyError('x')
        self.assertIs(Answering().handle_exception(error), error)
