"""The rollout calls a run makes (docs/decisions/0069): rollouts/live/ lists exactly the roots a run's
end may be credited to now (released members of live rollouts: not held, not ended, not of a done or
aborted rollout) with the time `at` up to which the list is complete; rollouts/gate/ gates the intents
of several requests in one call, each answered as POST rollouts/ answers it alone."""

from django.urls import reverse
from django.utils import timezone
from utilities.testing import APITestCase

from unicop import rollouts
from unicop.models import Rollout

from .fixtures import make_site, root_of


def gate_request(request_id, keys, min_roots=2):
    return {
        'rollout_id': request_id,
        'plan': '1,rest',
        'failure_threshold': 0.4,
        'min_roots': min_roots,
        'change_ids': [f'{request_id}-c'],
        'actor': 'alice',
        'intents': [{'root_key': k, 'intent': {'data': {'rootKey': k}}} for k in keys],
    }


class RolloutHotPathTestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        cls.sites = [make_site(f'Hot path {i}') for i in range(7)]

    def setUp(self):
        super().setUp()
        self.keys = sorted(root_of('site', s).key for s in self.sites)
        self.add_permissions('unicop.view_rollout', 'unicop.change_rollout')

    def test_live_lists_the_released_members_of_live_rollouts_only(self):
        a, b, c = self.keys[0:3], self.keys[3:5], self.keys[5:7]
        for request, keys in (('req-a', a), ('req-b', b), ('req-c', c)):
            rollouts.gate(request, '1,rest', 0.4, 1, [], 'alice', [(k, {}) for k in keys])
        rollouts.record_outcome(b[0], 'run-b', 'succeeded', '', timezone.now())  # B's wave 2 released
        rollouts.abort('req-c', 'bob', 'no')  # C's released first member stays released, C is not live
        at, keys = rollouts.live_roots()
        # A: wave 1 released (a[1:] held); B: its second wave released, the first ended; C: not live.
        self.assertEqual(keys, sorted([a[0], b[1]]))
        self.assertLessEqual(at, timezone.now())
        answer = self.client.get(reverse('plugins-api:unicop-api:rollout_live'), **self.header)
        self.assertHttpStatus(answer, 200)
        self.assertEqual(answer.json()['roots'], keys)
        # Counted: A open, B open (C aborted); A holds 2 and released 1, B released 1 (its first ended).
        self.assertEqual(answer.json()['rollouts'], {'open': 2, 'halted': 0})
        self.assertEqual(answer.json()['members'], {'held': 2, 'released': 2})
        self.assertTrue(answer.json()['at'])

    def test_gate_batch_answers_each_request_as_alone(self):
        url = reverse('plugins-api:unicop-api:rollout_gate')
        many, few = self.keys[0:4], self.keys[4:6]
        answer = self.client.post(
            url,
            {'requests': [gate_request('req-many', many), gate_request('req-few', few)]},
            format='json',
            **self.header,
        )
        self.assertHttpStatus(answer, 200)
        first, second = answer.json()['results']
        self.assertEqual((first['transition'], first['held']), ('opened', many[1:]))
        self.assertEqual(first['rollout']['rollout_id'], 'req-many')
        self.assertEqual((second['rollout'], second['held']), (None, []))
        # Asked again alone: the same answer, nothing opened twice.
        alone = self.client.post(
            reverse('plugins-api:unicop-api:rollout_list'),
            gate_request('req-many', many),
            format='json',
            **self.header,
        )
        self.assertEqual((alone.json()['transition'], alone.json()['held']), (None, many[1:]))
        self.assertEqual(Rollout.objects.count(), 1)

    def test_gate_batch_refuses_a_bad_request_naming_it(self):
        bad = {**gate_request('req-bad', self.keys[0:3]), 'plan': 'rest,1'}
        answer = self.client.post(
            reverse('plugins-api:unicop-api:rollout_gate'),
            {'requests': [gate_request('req-ok', self.keys[3:6]), bad]},
            format='json',
            **self.header,
        )
        self.assertHttpStatus(answer, 400)
        self.assertEqual(list(answer.json()['requests']['1']), ['plan'])  # the second request, its plan
        self.assertFalse(Rollout.objects.exists())
