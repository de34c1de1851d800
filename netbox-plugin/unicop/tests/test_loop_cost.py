"""What a run costs NetBox (docs/decisions/0045): a lease asked for with `context: true` answers with what
the reconciler reads next — the root's last run and last reconciled hash, its open runs only (newest
first, as `GET runs/?root=&state=…` lists them) and its snapshot, the same as `GET snapshot/` —, a lease
without it answers as before, a refused lease carries none of it; and saving a run record queues no
search-index update (runs are not in NetBox's global search: three RQ jobs per run less)."""

from unittest import mock

from core.models import ObjectType
from django.urls import reverse
from rest_framework import status

from unicop.models import ReconciliationRun, Root

from .test_api import HASH_B, RunWriteTestCase


def api(name, **kwargs):
    return reverse(f'plugins-api:unicop-api:{name}', kwargs=kwargs)


class LeaseContextTestCase(RunWriteTestCase):
    def setUp(self):
        super().setUp()
        # The context's snapshot is read by a token allowed to view all of it (docs/decisions/0048).
        self.add_permissions('dcim.view_site')

    def lease_with_context(self, holder, context=True):
        return self.client.post(
            api('root-lease', pk=self.root.pk),
            {'holder': holder, 'ttl_seconds': 60, 'context': context},
            format='json',
            **self.header,
        )

    def release(self, token):
        response = self.client.post(
            api('root-lease-release', pk=self.root.pk), {'token': token}, format='json', **self.header
        )
        self.assertHttpStatus(response, status.HTTP_204_NO_CONTENT)

    def test_context_is_the_last_run_open_runs_and_snapshot(self):
        token = self.lease('first')
        self.assertHttpStatus(self.create('run-done', token, snapshot_hash=HASH_B), status.HTTP_201_CREATED)
        self.assertHttpStatus(
            self.patch('run-done', {'fencing_token': token, 'state': 'succeeded'}), status.HTTP_200_OK
        )
        self.assertHttpStatus(self.create('run-open', token), status.HTTP_201_CREATED)
        self.release(token)

        response = self.lease_with_context('second')
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
        body = response.json()
        self.assertEqual((body['token'], body['holder']), (token + 1, 'second'))
        self.assertEqual([run['run_id'] for run in body['open_runs']], ['run-open'], 'open runs only')
        self.assertEqual(body['open_runs'][0]['fencing_token'], token)
        self.assertEqual(body['last_reconciled_hash'], HASH_B)
        self.assertEqual(body['last_run']['run_id'], 'run-open')
        snapshot = self.client.get(api('root-snapshot', pk=self.root.pk), **self.header).json()
        self.assertEqual(body['snapshot'], snapshot)
        self.assertEqual(body['snapshot']['hash'], Root.objects.get(pk=self.root.pk).current_hash)

    def test_no_context_unless_asked(self):
        response = self.lease_with_context('plain', context=False)
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
        self.assertEqual(set(response.json()), {'token', 'holder', 'expires_at'})

    def test_a_refused_lease_carries_no_context(self):
        self.lease('holder')
        response = self.lease_with_context('other')
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertEqual(
            set(response.json()), {'detail', 'holder', 'expires_at', 'highest_token', 'frozen', 'held_by'}
        )


class RunSearchIndexTestCase(RunWriteTestCase):
    def test_saving_a_run_queues_no_search_index_update(self):
        run_type = ObjectType.objects.get_for_model(ReconciliationRun).pk
        root_type = ObjectType.objects.get_for_model(Root).pk
        token = self.lease('w')
        with mock.patch('netbox.search.deferred.mark_for_deferred_indexing') as marked:
            self.assertHttpStatus(self.create('run-s', token), status.HTTP_201_CREATED)
            self.assertHttpStatus(
                self.patch('run-s', {'fencing_token': token, 'state': 'running'}), status.HTTP_200_OK
            )
            # A root saved meanwhile is still indexed: the patch does see NetBox's indexing.
            Root.objects.get(pk=self.root.pk).save()
        indexed = [call.args[0] for call in marked.call_args_list]
        self.assertNotIn(run_type, indexed)
        self.assertIn(root_type, indexed)
