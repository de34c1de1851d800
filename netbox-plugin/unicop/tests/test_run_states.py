"""The run state machine (DESIGN.md §2) as the run API enforces it, from the data in run_states.json, which
scripts/export-run-states.ts generates from core/runs/state-machine.ts (where
test/core/run-state-machine.test.ts checks that the declaration allows exactly the reconciler's writes):
the document holds DESIGN's states and terminal set, every state reachable; the plugin's RunStateChoices
are built from it (the UI's labels and colours unchanged; a new state needs only the document); POST
runs/ in every state (the initial ones 201, every other one 409 `{detail, state: null, allowed}` with no
row and no journal entry); PATCH along every declared transition (200, state stored) and every forbidden
one (409 `{detail, state, allowed}` naming the allowed next states, state unchanged, no journal entry);
a write that keeps the state is accepted in every state; a refusal's detail never names a token; the
fence still answers first; and a document that is not a consistent state machine is refused with the
field named."""

import json
from collections import deque
from importlib.resources import files

from django.core.exceptions import ImproperlyConfigured
from extras.models import JournalEntry
from rest_framework import status
from utilities.testing import TestCase

from unicop import run_states
from unicop.models import ReconciliationRun, RunStateChoices, run_state_choices

from .test_api import HASH_A, RunWriteTestCase, api

OUTCOMES = ('succeeded', 'drifted', 'failed', 'canceled', 'timed_out', 'denied')


def path_to(state):
    """The shortest way to reach `state`: an initial state, then declared transitions (BFS over the data)."""
    seen = {s: [s] for s in run_states.INITIAL}
    todo = deque(run_states.INITIAL)
    while todo:
        here = todo.popleft()
        for there in run_states.TRANSITIONS[here]:
            if there not in seen:
                seen[there] = [*seen[here], there]
                todo.append(there)
    return seen[state]


class RunStateDocumentTestCase(TestCase):
    def test_design_states_and_terminal_set(self):
        self.assertEqual(
            run_states.STATES,
            ('queued', 'leased', 'launched', 'awaiting_approval', 'running', *OUTCOMES, 'skipped'),
        )
        self.assertEqual(run_states.TERMINAL, frozenset((*OUTCOMES, 'skipped')))
        self.assertEqual(RunStateChoices.TERMINAL, run_states.TERMINAL)
        self.assertEqual(set(RunStateChoices.values()), set(run_states.STATES))
        for state in run_states.TERMINAL:
            self.assertEqual(run_states.TRANSITIONS[state], (), f'{state} is final')

    def test_choices_built_from_the_document(self):
        # The UI as it was when models.py listed the states itself: value, label and colour, in order.
        shown = [
            ('queued', 'Queued', 'gray'),
            ('leased', 'Leased', 'cyan'),
            ('launched', 'Launched', 'blue'),
            ('awaiting_approval', 'Awaiting approval', 'purple'),
            ('running', 'Running', 'blue'),
            ('succeeded', 'Succeeded', 'green'),
            ('drifted', 'Drifted', 'orange'),  # a check run that found drift (decision 0054)
            ('failed', 'Failed', 'red'),
            ('canceled', 'Canceled', 'orange'),
            ('timed_out', 'Timed out', 'red'),
            ('denied', 'Denied', 'orange'),
            ('skipped', 'Skipped', 'gray'),
        ]
        self.assertEqual([(v, str(label), RunStateChoices.colors[v]) for v, label in RunStateChoices], shown)
        self.assertEqual(RunStateChoices.values(), list(run_states.STATES))
        self.assertEqual((RunStateChoices.QUEUED, RunStateChoices.TIMED_OUT), ('queued', 'timed_out'))
        self.assertEqual(RunStateChoices.UNSUCCESSFUL, {'failed', 'canceled', 'timed_out', 'denied'})

    def test_a_new_state_needs_only_the_document(self):
        colors = {'succeeded': 'green'}
        choices = run_state_choices(('queued', 'on_hold', 'succeeded'), ('succeeded', 'on_hold'), colors)
        self.assertEqual(choices.ON_HOLD, 'on_hold')
        self.assertEqual(
            list(choices), [('queued', 'Queued'), ('on_hold', 'On hold'), ('succeeded', 'Succeeded')]
        )
        self.assertEqual(choices.colors, {'queued': 'gray', 'on_hold': 'gray', 'succeeded': 'green'})
        self.assertEqual(choices.TERMINAL, frozenset({'succeeded', 'on_hold'}))
        self.assertEqual(choices.UNSUCCESSFUL, frozenset({'on_hold'}))
        with self.assertRaisesMessage(ImproperlyConfigured, "lacks: ['skipped']"):
            run_state_choices(('queued',), (), colors={'queued': 'gray', 'skipped': 'gray'})

    def test_generated_from_the_declaration(self):
        doc = json.loads(files('unicop').joinpath(run_states.DOCUMENT).read_text(encoding='utf-8'))
        self.assertIn('core/runs/state-machine.ts', doc['$comment'])

    def test_every_state_reachable(self):
        for state in run_states.STATES:
            self.assertEqual(path_to(state)[-1], state)

    def test_inconsistent_documents_refused(self):
        good = {
            'states': ['a', 'b', 'c'],
            'initial': ['a'],
            'terminal': ['c'],
            'transitions': {'a': ['b'], 'b': ['c'], 'c': []},
        }
        self.assertEqual(run_states.load(_json(good))['initial'], ['a'])
        self.assertEqual(run_states.load(_json({**good, '$comment': 'generated'}))['terminal'], ['c'])
        for broken, field in (
            ('{', 'not JSON'),
            (_json({**good, 'extra': 1}), 'only the keys'),
            (_json({**good, 'states': []}), 'states'),
            (_json({**good, 'states': ['a', 'a', 'b', 'c']}), 'states'),
            (_json({**good, 'initial': ['x']}), 'initial'),
            (_json({**good, 'terminal': ['x']}), 'terminal'),
            (_json({**good, 'transitions': {'a': ['b'], 'b': ['c']}}), 'transitions'),
            (_json({**good, 'transitions': {'a': ['x'], 'b': ['c'], 'c': []}}), 'transitions.a'),
            (_json({**good, 'transitions': {'a': ['a', 'b'], 'b': ['c'], 'c': []}}), 'transitions.a'),
            (_json({**good, 'transitions': {'a': ['b'], 'b': ['c'], 'c': ['a']}}), 'transitions.c'),
            (_json({**good, 'transitions': {'a': ['b'], 'b': [], 'c': []}}), 'transitions.b'),
        ):
            with self.subTest(field=field, broken=broken):
                with self.assertRaisesMessage(ImproperlyConfigured, field):
                    run_states.load(broken)


def _json(doc):
    return json.dumps(doc)


class RunStateAPITestCase(RunWriteTestCase):
    def setUp(self):
        super().setUp()
        self.token = self.lease('w')
        self.n = 0

    def journal_count(self):
        return JournalEntry.objects.count()

    def run_in(self, state):
        """A new run brought to `state` through the API along declared transitions; its run id."""
        self.n += 1
        run_id = f'run-{state}-{self.n}'
        first, *rest = path_to(state)
        self.assertHttpStatus(self.create(run_id, self.token, state=first), status.HTTP_201_CREATED)
        for step in rest:
            self.assertHttpStatus(
                self.patch(run_id, {'fencing_token': self.token, 'state': step}), status.HTTP_200_OK
            )
        self.assertEqual(ReconciliationRun.objects.get(run_id=run_id).state, state)
        return run_id

    def test_create_only_in_initial_states(self):
        for state in run_states.STATES:
            with self.subTest(state=state):
                run_id = f'run-created-{state}'
                journal = {'kind': 'info', 'comments': f'{run_id} created'}
                before = self.journal_count()
                response = self.create(run_id, self.token, state=state, journal=journal)
                if state in run_states.INITIAL:
                    self.assertHttpStatus(response, status.HTTP_201_CREATED)
                    self.assertEqual(ReconciliationRun.objects.get(run_id=run_id).state, state)
                    self.assertEqual(self.journal_count(), before + 1)
                else:
                    self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
                    body = response.json()
                    self.assertEqual((body['state'], body['allowed']), (None, list(run_states.INITIAL)), body)
                    self.assertIn(state, body['detail'])
                    self.assertNotIn('token', body['detail'], 'the workers read "token" as a fence refusal')
                    self.assertFalse(ReconciliationRun.objects.filter(run_id=run_id).exists())
                    self.assertEqual(self.journal_count(), before)

    def test_create_without_state_is_queued(self):
        response = self.client.post(
            api('reconciliationrun-list'),
            {
                'run_id': 'run-default',
                'root': self.root.key,
                'snapshot_hash': HASH_A,
                'fencing_token': self.token,
                'cause': 'change',
            },
            format='json',
            **self.header,
        )
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
        self.assertEqual(response.json()['state'], 'queued')

    def test_every_declared_transition(self):
        walked = 0
        for before, targets in run_states.TRANSITIONS.items():
            for after in targets:
                with self.subTest(before=before, after=after):
                    run_id = self.run_in(before)
                    response = self.patch(run_id, {'fencing_token': self.token, 'state': after})
                    self.assertHttpStatus(response, status.HTTP_200_OK)
                    self.assertEqual(response.json()['state'], after)
                    self.assertEqual(ReconciliationRun.objects.get(run_id=run_id).state, after)
                    walked += 1
        self.assertEqual(walked, sum(len(t) for t in run_states.TRANSITIONS.values()))
        self.assertGreater(walked, 0)

    def test_every_forbidden_transition(self):
        tried = 0
        for before in run_states.STATES:
            run_id = self.run_in(before)
            allowed = run_states.TRANSITIONS[before]
            for after in run_states.STATES:
                if after == before or after in allowed:
                    continue
                with self.subTest(before=before, after=after):
                    before_journal = self.journal_count()
                    response = self.patch(
                        run_id,
                        {
                            'fencing_token': self.token,
                            'state': after,
                            'summary': 'must not be stored',
                            'journal': {'kind': 'danger', 'comments': 'must not be journalled'},
                        },
                    )
                    self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
                    body = response.json()
                    self.assertEqual(set(body), {'detail', 'state', 'allowed'})
                    self.assertEqual((body['state'], body['allowed']), (before, list(allowed)))
                    self.assertIn(before, body['detail'])
                    if allowed:  # the detail names the move refused and the states it may make
                        self.assertIn(f'from {before} to {after}', body['detail'])
                        self.assertEqual(body['detail'].split('; allowed: ')[-1].split(', '), list(allowed))
                    else:
                        self.assertIn('terminal state is final', body['detail'])
                    self.assertNotIn('token', body['detail'], 'the workers read "token" as a fence refusal')
                    run = ReconciliationRun.objects.get(run_id=run_id)
                    self.assertEqual((run.state, run.summary), (before, ''))
                    self.assertEqual(self.journal_count(), before_journal)
                    tried += 1
        n = len(run_states.STATES)
        self.assertEqual(tried, n * (n - 1) - sum(len(t) for t in run_states.TRANSITIONS.values()))

    def test_keeping_the_state_is_allowed_in_every_state(self):
        for state in run_states.STATES:
            with self.subTest(state=state):
                run_id = self.run_in(state)
                response = self.patch(
                    run_id,
                    {
                        'fencing_token': self.token,
                        'state': state,
                        'summary': f'still {state}',
                        'journal': {'kind': 'info', 'comments': f'{run_id} noted'},
                    },
                )
                self.assertHttpStatus(response, status.HTTP_200_OK)
                self.assertEqual(response.json()['summary'], f'still {state}')
                response = self.patch(run_id, {'fencing_token': self.token, 'awx_job_id': 5})
                self.assertHttpStatus(response, status.HTTP_200_OK)
                self.assertEqual(ReconciliationRun.objects.get(run_id=run_id).state, state)

    def test_refusal_detail_never_names_a_token(self):
        # Even for a run whose id says "token": the workers would take that 409 for a fence refusal.
        self.assertHttpStatus(self.create('token-run', self.token, state='leased'), status.HTTP_201_CREATED)
        self.patch('token-run', {'fencing_token': self.token, 'state': 'succeeded'})
        for response in (
            self.patch('token-run', {'fencing_token': self.token, 'state': 'running'}),
            self.create('token-run-2', self.token, state='running'),
        ):
            self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
            self.assertNotIn('token', response.json()['detail'])

    def test_fence_answers_before_the_state_machine(self):
        run_id = self.run_in('succeeded')
        self.expire()
        newer = self.lease('w2')
        # A stale token and a forbidden move: the fence's 409 (naming the holder), not the state's.
        response = self.patch(run_id, {'fencing_token': self.token, 'state': 'running'})
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertEqual((response.json()['holder'], response.json()['highest_token']), ('w2', newer))
        self.assertNotIn('allowed', response.json())
        response = self.create('run-stale', self.token, state='succeeded')
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertEqual(response.json()['holder'], 'w2')
