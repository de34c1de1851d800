"""The lean run write, `POST runs/{run_id}/write/` (docs/decisions/0064): the same rules as
`PATCH runs/{run_id}/` — the fence (a stale or never-issued token: 409, nothing written), the run state
machine (409 naming the allowed states), the journal entry on the root's anchor in the same transaction,
the root following its newest run (last run, last reconciled hash, finish time) — answered with three
fields, with NetBox's `change` permission on runs, a malformed body refused naming the field, and no
change-log record: the PATCH writes an ObjectChange per write, the lean write none. A run's journal entry
(either write) is stored without NetBox's post_save: no search-index job, no change record for it."""

from unittest import mock

from core.models import ObjectChange, ObjectType
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from extras.models import JournalEntry
from rest_framework import status

from unicop.models import ReconciliationRun, Root

from .test_api import HASH_B, RunWriteTestCase


def api(name, **kwargs):
    return reverse(f'plugins-api:unicop-api:{name}', kwargs=kwargs)


class LeanRunWriteTestCase(RunWriteTestCase):
    def write(self, run_id, body):
        return self.client.post(
            api('reconciliationrun-write', run_id=run_id), body, format='json', **self.header
        )

    def changes_of(self, run_id):
        run = ReconciliationRun.objects.get(run_id=run_id)
        return ObjectChange.objects.filter(
            changed_object_type=ContentType.objects.get_for_model(ReconciliationRun), changed_object_id=run.pk
        )

    def test_writes_the_run_the_root_and_the_journal_in_one_answer(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-l', token), status.HTTP_201_CREATED)
        line = {
            'ts': '2026-12-02T10:00:00Z',
            'level': 'info',
            'message': 'launched',
            'meta': {'awx_job_id': 7},
        }
        response = self.write(
            'run-l',
            {
                'fencing_token': token,
                'state': 'launched',
                'awx_job_type': 'job',
                'awx_job_id': 7,
                'awx_job_url': 'http://awx.example/#/jobs/playbook/7',
                'log_lines': [line],
            },
        )
        self.assertHttpStatus(response, status.HTTP_200_OK)
        self.assertEqual(response.json(), {'run_id': 'run-l', 'state': 'launched', 'finished': None})
        run = ReconciliationRun.objects.get(run_id='run-l')
        self.assertEqual((run.state, run.awx_job_type, run.awx_job_id), ('launched', 'job', 7))
        self.assertEqual(run.log_lines[0]['message'], 'launched')

        response = self.write(
            'run-l',
            {
                'fencing_token': token,
                'state': 'succeeded',
                'snapshot_hash': HASH_B,
                'summary': 'converged',
                'journal': {'kind': 'success', 'comments': 'run-l converged'},
            },
        )
        self.assertHttpStatus(response, status.HTTP_200_OK)
        self.assertEqual(response.json()['state'], 'succeeded')
        self.assertIsNotNone(response.json()['finished'])
        run.refresh_from_db()
        self.assertEqual((run.summary, run.snapshot_hash), ('converged', HASH_B))
        self.assertIsNotNone(run.finished)
        root = Root.objects.get(pk=self.root.pk)
        self.assertEqual((root.last_run_id, root.last_reconciled_hash), (run.pk, HASH_B))
        entry = JournalEntry.objects.get(assigned_object_id=self.site.pk)
        self.assertEqual(
            (entry.kind, entry.comments, entry.created_by), ('success', 'run-l converged', self.user)
        )

    def test_no_change_log_record_where_the_patch_writes_one(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-c', token), status.HTTP_201_CREATED)
        created = self.changes_of('run-c').count()
        self.assertHttpStatus(self.write('run-c', {'fencing_token': token, 'state': 'launched'}), 200)
        self.assertEqual(self.changes_of('run-c').count(), created, 'the lean write logs no change')
        self.assertHttpStatus(self.patch('run-c', {'fencing_token': token, 'state': 'running'}), 200)
        self.assertEqual(self.changes_of('run-c').count(), created + 1, 'the PATCH does')

    def test_the_fence_and_the_state_machine_refuse_and_write_nothing(self):
        old = self.lease('worker-old')
        self.assertHttpStatus(self.create('run-old', old), status.HTTP_201_CREATED)
        self.expire()
        new = self.lease('worker-new')
        entry = {'kind': 'danger', 'comments': 'stale outcome'}
        for token in (old, new + 1):
            with self.subTest(token=token):
                response = self.write(
                    'run-old', {'fencing_token': token, 'state': 'failed', 'journal': entry}
                )
                self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
                self.assertEqual(response.json()['highest_token'], new)
        self.assertHttpStatus(self.write('run-old', {'fencing_token': new, 'state': 'canceled'}), 200)
        self.assertEqual(
            ReconciliationRun.objects.get(run_id='run-old').fencing_token, new, 'its latest writer'
        )
        response = self.write('run-old', {'fencing_token': new, 'state': 'succeeded', 'journal': entry})
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertEqual((response.json()['state'], response.json()['allowed']), ('canceled', []))
        self.assertFalse(JournalEntry.objects.exists())
        self.assertEqual(ReconciliationRun.objects.get(run_id='run-old').state, 'canceled')

    def test_malformed_body_names_the_field(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-m', token), status.HTTP_201_CREATED)
        for body, field in (
            ({'state': 'running'}, 'fencing_token'),
            ({'fencing_token': token, 'state': 'exploded'}, 'state'),
            ({'fencing_token': token, 'snapshot_hash': 'xyz'}, 'snapshot_hash'),
            ({'fencing_token': token, 'awx_job_type': 'cron'}, 'awx_job_type'),
            ({'fencing_token': token, 'awx_job_url': 'not a url'}, 'awx_job_url'),
            ({'fencing_token': token, 'outcome_class': 'x' * 51}, 'outcome_class'),
            ({'fencing_token': token, 'log_lines': [{'level': 'info'}]}, 'log_lines'),
            ({'fencing_token': token, 'journal': {'kind': 'info'}}, 'journal'),
        ):
            with self.subTest(field=field):
                response = self.write('run-m', body)
                self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
                self.assertIn(field, response.json())
        self.assertEqual(ReconciliationRun.objects.get(run_id='run-m').state, 'leased')

    def test_needs_the_change_permission_and_a_known_run(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-p', token), status.HTTP_201_CREATED)
        self.assertHttpStatus(self.write('nope', {'fencing_token': token}), status.HTTP_404_NOT_FOUND)
        # The view and add permissions stay: the run may be read and created, not changed.
        self.user.object_permissions.filter(actions__contains=['change']).delete()
        response = self.write('run-p', {'fencing_token': token, 'state': 'launched'})
        self.assertHttpStatus(response, status.HTTP_403_FORBIDDEN)
        self.assertEqual(ReconciliationRun.objects.get(run_id='run-p').state, 'leased')

    def test_the_journal_entry_queues_no_search_index_job_and_no_change_record(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-s', token), status.HTTP_201_CREATED)
        journal_type = ObjectType.objects.get_for_model(JournalEntry).pk
        body = {
            'fencing_token': token,
            'state': 'succeeded',
            'journal': {'kind': 'success', 'comments': 'ok'},
        }
        with mock.patch('netbox.search.deferred.mark_for_deferred_indexing') as marked:
            self.assertHttpStatus(self.write('run-s', body), status.HTTP_200_OK)
            # A journal entry saved the usual way meanwhile is indexed: the patch sees NetBox's indexing.
            JournalEntry(assigned_object=self.site, kind='info', comments='by hand').save()
        indexed = [call.args[0] for call in marked.call_args_list]
        self.assertEqual(indexed.count(journal_type), 1, 'only the one saved by hand')
        entry = JournalEntry.objects.get(comments='ok')
        self.assertEqual(
            (entry.assigned_object, entry.kind, entry.created_by), (self.site, 'success', self.user)
        )
        self.assertIsNotNone(entry.created)
        changes = ObjectChange.objects.filter(changed_object_type_id=journal_type, changed_object_id=entry.pk)
        self.assertFalse(changes.exists())
