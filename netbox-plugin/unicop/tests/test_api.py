"""The REST API of roots and runs, against NetBox's own APIViewTestCases where they fit (get, list, brief,
object permissions, create), plus: keyset pagination and the key/kind/frozen filters of the bulk listing
with a query count independent of the number of roots; freeze/unfreeze with a reason (change-logged,
journalled, change permission needed); leases (acquire 201 / 409 naming the holder, renew, release, an
expired lease taken with a higher token, expired or foreign token 409, malformed 400, unknown root 404);
runs (the fence: a token lower than the highest issued -> 409, terminal states are final — every
transition: test_run_states.py —, the root's last run, last reconciled hash and derived status follow
the runs); a run write's journal entry (on the root's
anchor, by the request's user, none when the write is refused, 400 naming journal.kind/comments); the
root's policy shows the catalogue's normalised change window."""

from datetime import timedelta

from dcim.models import Site
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from extras.models import JournalEntry
from ipam.models import Prefix
from rest_framework import status
from utilities.testing import APITestCase, APIViewTestCases

from unicop.catalogue import load_catalogue
from unicop.models import ReconciliationRun, Root

from .fixtures import make_site, root_of

HASH_A = 'a' * 64
HASH_B = 'b' * 64


def api(name, **kwargs):
    return reverse(f'plugins-api:unicop-api:{name}', kwargs=kwargs)


class RootAPITestCase(APIViewTestCases.GetObjectViewTestCase, APIViewTestCases.ListObjectsViewTestCase):
    model = Root
    view_namespace = 'plugins-api:unicop'
    brief_fields = ['display', 'id', 'key', 'kind', 'url']

    @classmethod
    def setUpTestData(cls):
        for name in ('Lyon', 'Nice', 'Lille'):
            make_site(name)
        Root.objects.update(hash_dirty=False, current_hash=HASH_A)

    def test_root_shape(self):
        self.add_permissions('unicop.view_root')
        root = Root.objects.first()
        body = self.client.get(api('root-detail', pk=root.pk), **self.header).json()
        for field in (
            'id',
            'key',
            'kind',
            'anchor',
            'frozen',
            'frozen_reason',
            'status',
            'current_hash',
            'hash_stale',
            'hash_stale_since',
            'hash_computed_at',
            'last_reconciled_hash',
            'last_run',
        ):
            self.assertIn(field, body)
        self.assertEqual(
            body['anchor'], {'object_type': 'dcim.site', 'id': root.anchor_id, 'display': str(root.anchor)}
        )
        self.assertEqual(body['status'], 'pending')

    def test_policy_shows_normalised_change_window(self):
        self.add_permissions('unicop.view_root')
        load_catalogue(
            {'site': {'policy': {'change_window': {'days': ['sun'], 'start': '23:00', 'end': '01:00'}}}}
        )
        self.addCleanup(load_catalogue)
        root = Root.objects.first()
        body = self.client.get(api('root-detail', pk=root.pk), **self.header).json()
        self.assertEqual(
            body['policy']['change_window'],
            [{'days': ['sun'], 'start': '23:00', 'end': '01:00', 'timezone': 'UTC'}],
        )
        self.assertEqual(body['awx_template'], {'type': 'job', 'id': None})


class RootListingTestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        cls.sites = [make_site(f'S{i}') for i in range(7)]
        cls.prefix = Prefix.objects.create(prefix='10.50.0.0/24')
        Root.objects.update(hash_dirty=False, current_hash=HASH_A)
        Root.objects.filter(key=f'site/{cls.sites[0].pk}').update(frozen=True, frozen_reason='maintenance')

    def setUp(self):
        super().setUp()
        self.add_permissions('unicop.view_root')

    def get(self, query=''):
        response = self.client.get(api('root-list') + query, **self.header)
        self.assertHttpStatus(response, status.HTTP_200_OK)
        return response.json()

    def test_keyset_pages_cover_everything_once(self):
        seen, cursor, pages = [], None, 0
        while True:
            body = self.get(f'?limit=3{"&cursor=" + cursor if cursor else ""}')
            self.assertEqual(set(body), {'results', 'next_cursor'})
            seen.extend(r['id'] for r in body['results'])
            pages += 1
            cursor = body['next_cursor']
            if cursor is None:
                break
        self.assertEqual(seen, sorted(Root.objects.values_list('pk', flat=True)))
        self.assertEqual(pages, 3)  # 8 roots, 3 per page

    def test_filters(self):
        self.assertEqual(
            [r['key'] for r in self.get('?kind=prefix')['results']], [f'prefix/{self.prefix.pk}']
        )
        self.assertEqual(
            [r['key'] for r in self.get(f'?key=site/{self.sites[1].pk}')['results']],
            [f'site/{self.sites[1].pk}'],
        )
        frozen = self.get('?frozen=true')['results']
        self.assertEqual(
            [(r['key'], r['status'], r['frozen_reason']) for r in frozen],
            [(f'site/{self.sites[0].pk}', 'frozen', 'maintenance')],
        )
        self.assertEqual(len(self.get('?frozen=false')['results']), 7)

    def test_bad_paging_parameters(self):
        for query, field in (
            ('?limit=0', 'limit'),
            ('?limit=abc', 'limit'),
            ('?limit=5000', 'limit'),
            ('?cursor=xyz', 'cursor'),
        ):
            response = self.client.get(api('root-list') + query, **self.header)
            self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
            self.assertIn(field, response.json())

    def test_no_query_per_root(self):
        self.get('?limit=1000')  # warm NetBox's per-process caches (content types, custom fields)
        with CaptureQueriesContext(connection) as few:
            self.get('?limit=1000')
        for i in range(20):
            make_site(f'More{i}')
        Root.objects.update(hash_dirty=False)
        # Give every root a last run and a lease: still no query per root.
        for root in Root.objects.all():
            run = ReconciliationRun.objects.create(
                run_id=f'r-{root.pk}',
                root=root,
                snapshot_hash=HASH_A,
                fencing_token=0,
                cause='change',
                state='succeeded',
            )
            Root.objects.filter(pk=root.pk).update(
                last_run=run,
                lease_holder='w',
                lease_token=1,
                lease_expires_at=timezone.now() + timedelta(minutes=5),
            )
        with CaptureQueriesContext(connection) as many:
            body = self.get('?limit=1000')
        self.assertEqual(len(body['results']), 28)
        self.assertEqual(len(few), len(many), [q['sql'][:120] for q in many])

    def test_sweeper_fields_load_no_anchor_and_no_tags(self):
        # The sweeper asks for the fields it reads (workers/sweeper: sweptFields); NetBox's `fields`.
        fields = 'id,key,frozen,current_hash,hash_stale,last_reconciled_hash,lease,last_run'
        with CaptureQueriesContext(connection) as queries:
            body = self.get(f'?limit=1000&fields={fields}')
        self.assertEqual(len(body['results']), 8)
        self.assertEqual(set(body['results'][0]), set(fields.split(',')))
        tables = ('"dcim_site"', '"ipam_prefix"', '"extras_taggeditem"')
        self.assertEqual([q['sql'][:120] for q in queries if any(t in q['sql'] for t in tables)], [])

    def test_drift_fields_no_query_per_root(self):
        # The drift scheduler's fields (workers/drift/scheduler.ts driftFields): `policy` reads each
        # root's anchor (its unicop_policy), so the anchors are prefetched, not loaded one by one.
        fields = 'id,key,status,frozen,lease,last_run,policy,awx_template,last_drift_check'
        self.get(f'?limit=1000&fields={fields}')  # warm NetBox's per-process caches
        with CaptureQueriesContext(connection) as few:
            self.get(f'?limit=1000&fields={fields}')
        for i in range(20):
            make_site(f'Drift{i}')
        Root.objects.update(hash_dirty=False)
        with CaptureQueriesContext(connection) as many:
            body = self.get(f'?limit=1000&fields={fields}')
        self.assertEqual(len(body['results']), 28)
        self.assertTrue(all(root['policy'] is not None for root in body['results']))
        self.assertEqual(len(few), len(many), [q['sql'][:120] for q in many])

    def test_stale_hash_shown_as_stale_not_recomputed(self):
        # docs/decisions/0043: the listing and the detail show the stored hash and say it is stale; the
        # snapshot endpoint reads it fresh and stores it.
        root = root_of('prefix', self.prefix)
        since = timezone.now() - timedelta(seconds=5)
        Root.objects.filter(pk=root.pk).update(hash_dirty=True, current_hash=HASH_B, hash_stale_since=since)
        for body in (
            self.get(f'?key={root.key}')['results'][0],
            self.client.get(api('root-detail', pk=root.pk), **self.header).json(),
        ):
            self.assertEqual(
                (body['current_hash'], body['hash_stale'], body['hash_stale_since']),
                (HASH_B, True, since.isoformat().replace('+00:00', 'Z')),
            )
            self.assertEqual(body['status'], 'pending')
        # A snapshot is read by a token allowed to view all of it (docs/decisions/0048).
        self.add_permissions('ipam.view_prefix')
        snap = self.client.get(api('root-snapshot', pk=root.pk), **self.header).json()
        body = self.get(f'?key={root.key}')['results'][0]
        self.assertEqual(
            (body['current_hash'], body['hash_stale'], body['hash_stale_since']), (snap['hash'], False, None)
        )
        self.assertIsNotNone(body['hash_computed_at'])


class FreezeTestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        cls.site = make_site('Rome')

    def setUp(self):
        super().setUp()
        self.root = root_of('site', self.site)

    def test_freeze_and_unfreeze(self):
        self.add_permissions('unicop.view_root', 'unicop.change_root')
        response = self.client.post(
            api('root-freeze', pk=self.root.pk),
            {'reason': 'change freeze week'},
            format='json',
            **self.header,
        )
        self.assertHttpStatus(response, status.HTTP_200_OK)
        self.assertEqual((response.json()['frozen'], response.json()['status']), (True, 'frozen'))
        self.assertEqual(response.json()['frozen_reason'], 'change freeze week')
        journal = JournalEntry.objects.filter(assigned_object_id=self.root.pk).get()
        self.assertIn('change freeze week', journal.comments)

        response = self.client.post(
            api('root-unfreeze', pk=self.root.pk), {'reason': 'done'}, format='json', **self.header
        )
        self.assertHttpStatus(response, status.HTTP_200_OK)
        self.assertEqual((response.json()['frozen'], response.json()['frozen_reason']), (False, ''))

    def test_freeze_needs_reason(self):
        self.add_permissions('unicop.view_root', 'unicop.change_root')
        response = self.client.post(api('root-freeze', pk=self.root.pk), {}, format='json', **self.header)
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        self.assertIn('reason', response.json())

    def test_freeze_needs_change_permission(self):
        self.add_permissions('unicop.view_root')
        response = self.client.post(
            api('root-freeze', pk=self.root.pk), {'reason': 'x'}, format='json', **self.header
        )
        self.assertHttpStatus(response, status.HTTP_403_FORBIDDEN)
        self.root.refresh_from_db()
        self.assertFalse(self.root.frozen)


class LeaseAPITestCase(APITestCase):
    @classmethod
    def setUpTestData(cls):
        cls.site = make_site('Madrid')

    def setUp(self):
        super().setUp()
        self.add_permissions('unicop.view_root', 'unicop.change_root')
        self.root = root_of('site', self.site)

    def post(self, name, body, pk=None):
        return self.client.post(api(name, pk=pk or self.root.pk), body, format='json', **self.header)

    def test_acquire_conflict_renew_release(self):
        response = self.post('root-lease', {'holder': 'worker-1', 'ttl_seconds': 60})
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
        lease = response.json()
        self.assertEqual((lease['token'], lease['holder']), (1, 'worker-1'))

        response = self.post('root-lease', {'holder': 'worker-2', 'ttl_seconds': 60})
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertEqual(response.json()['holder'], 'worker-1')
        self.assertEqual(response.json()['expires_at'], lease['expires_at'])

        response = self.post('root-lease-renew', {'token': 1, 'ttl_seconds': 120})
        self.assertHttpStatus(response, status.HTTP_200_OK)
        self.assertGreater(response.json()['expires_at'], lease['expires_at'])

        response = self.post('root-lease-release', {'token': 1})
        self.assertHttpStatus(response, status.HTTP_204_NO_CONTENT)
        response = self.post('root-lease', {'holder': 'worker-2', 'ttl_seconds': 60})
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
        self.assertEqual(response.json()['token'], 2, 'tokens only grow, also after a release')

    def test_expired_lease_taken_with_higher_token(self):
        self.assertHttpStatus(self.post('root-lease', {'holder': 'old', 'ttl_seconds': 60}), 201)
        Root.objects.filter(pk=self.root.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        response = self.post('root-lease', {'holder': 'new', 'ttl_seconds': 60})
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
        self.assertEqual(response.json()['token'], 2)
        # The old holder's token is now foreign: renew and release are refused, naming the holder.
        for name, body in (
            ('root-lease-renew', {'token': 1, 'ttl_seconds': 60}),
            ('root-lease-release', {'token': 1}),
        ):
            response = self.post(name, body)
            self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
            self.assertEqual(response.json()['holder'], 'new')
            self.assertEqual(response.json()['highest_token'], 2)

    def test_expired_token_refused(self):
        self.assertHttpStatus(self.post('root-lease', {'holder': 'slow', 'ttl_seconds': 60}), 201)
        Root.objects.filter(pk=self.root.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        response = self.post('root-lease-renew', {'token': 1, 'ttl_seconds': 60})
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertIn('expired', response.json()['detail'])
        self.assertEqual(response.json()['holder'], 'slow')

    def test_frozen_root_cannot_be_leased(self):
        Root.objects.filter(pk=self.root.pk).update(frozen=True, frozen_reason='audit')
        response = self.post('root-lease', {'holder': 'w', 'ttl_seconds': 60})
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertEqual((response.json()['frozen'], response.json()['holder']), (True, None))
        self.assertIn('frozen: audit', response.json()['detail'])
        self.assertEqual(Root.objects.get(pk=self.root.pk).highest_token, 0, 'no token issued')

    def test_malformed(self):
        for name, body, fields in (
            ('root-lease', {'ttl_seconds': 'soon'}, {'holder', 'ttl_seconds'}),
            ('root-lease', {'holder': 'w', 'ttl_seconds': 0}, {'ttl_seconds'}),
            ('root-lease-renew', {'token': 'x'}, {'token', 'ttl_seconds'}),
            ('root-lease-release', {}, {'token'}),
        ):
            response = self.post(name, body)
            self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
            self.assertEqual(set(response.json()), fields)

    def test_unknown_root(self):
        response = self.post('root-lease', {'holder': 'w', 'ttl_seconds': 60}, pk=987654)
        self.assertHttpStatus(response, status.HTTP_404_NOT_FOUND)

    def test_needs_change_permission(self):
        self.user.user_permissions.clear()
        for perm in self.user.object_permissions.all():
            perm.delete()
        self.add_permissions('unicop.view_root')
        response = self.post('root-lease', {'holder': 'w', 'ttl_seconds': 60})
        self.assertHttpStatus(response, status.HTTP_403_FORBIDDEN)


class RunAPITestCase(
    APIViewTestCases.GetObjectViewTestCase,
    APIViewTestCases.ListObjectsViewTestCase,
    APIViewTestCases.CreateObjectViewTestCase,
):
    model = ReconciliationRun
    view_namespace = 'plugins-api:unicop'
    brief_fields = ['display', 'id', 'run_id', 'state', 'url']

    @classmethod
    def setUpTestData(cls):
        site = make_site('Vienna')
        cls.root = root_of('site', site)
        Root.objects.filter(pk=cls.root.pk).update(highest_token=3)
        for i in range(3):
            ReconciliationRun.objects.create(
                run_id=f'run-{i}',
                root=cls.root,
                snapshot_hash=HASH_A,
                fencing_token=i + 1,
                cause='change',
                state='succeeded',
            )
        cls.create_data = [
            {
                'run_id': 'run-new-1',
                'root': cls.root.pk,
                'snapshot_hash': HASH_B,
                'fencing_token': 3,
                'cause': 'change',
                'state': 'queued',
            },
            {
                'run_id': 'run-new-2',
                'root': cls.root.pk,
                'snapshot_hash': HASH_B,
                'fencing_token': 3,
                'cause': 'sweep',
                'state': 'queued',
            },
        ]

    def _get_detail_url(self, instance):
        return api('reconciliationrun-detail', run_id=instance.run_id)

    def test_bulk_create_objects(self):
        """Runs are created one at a time (each passes the fence of its root)."""
        self.add_permissions('unicop.add_reconciliationrun')
        response = self.client.post(self._get_list_url(), self.create_data, format='json', **self.header)
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        self.assertFalse(ReconciliationRun.objects.filter(run_id__startswith='run-new').exists())

    def test_bulk_create_objects_invalid_item(self):
        self.test_bulk_create_objects()


class RunWriteTestCase(APITestCase):
    """Base of the run-write tests (no tests of its own): a site root and helpers to lease and write runs."""

    @classmethod
    def setUpTestData(cls):
        cls.site = make_site('Prague')

    def setUp(self):
        super().setUp()
        self.add_permissions(
            'unicop.view_root',
            'unicop.change_root',
            'unicop.view_reconciliationrun',
            'unicop.add_reconciliationrun',
            'unicop.change_reconciliationrun',
        )
        self.root = root_of('site', self.site)

    def lease(self, holder):
        response = self.client.post(
            api('root-lease', pk=self.root.pk),
            {'holder': holder, 'ttl_seconds': 60},
            format='json',
            **self.header,
        )
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
        return response.json()['token']

    def create(self, run_id, token, **extra):
        body = {
            'run_id': run_id,
            'root': self.root.key,
            'snapshot_hash': HASH_A,
            'fencing_token': token,
            'cause': 'change',
            'state': 'leased',
            **extra,
        }
        return self.client.post(api('reconciliationrun-list'), body, format='json', **self.header)

    def patch(self, run_id, body):
        return self.client.patch(
            api('reconciliationrun-detail', run_id=run_id), body, format='json', **self.header
        )

    def expire(self):
        Root.objects.filter(pk=self.root.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


class RunFenceTestCase(RunWriteTestCase):
    def test_stale_holder_cannot_write(self):
        old = self.lease('worker-old')
        self.assertHttpStatus(self.create('run-old', old), status.HTTP_201_CREATED)
        self.expire()
        new = self.lease('worker-new')
        self.assertGreater(new, old)
        # The stale holder's writes are refused, naming the current holder.
        response = self.patch('run-old', {'fencing_token': old, 'state': 'succeeded'})
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertEqual(response.json()['holder'], 'worker-new')
        self.assertEqual(response.json()['highest_token'], new)
        self.assertEqual(ReconciliationRun.objects.get(run_id='run-old').state, 'leased')
        self.assertHttpStatus(self.create('run-old-2', old), status.HTTP_409_CONFLICT)
        # The current holder writes, and may adopt the earlier run.
        self.assertHttpStatus(
            self.patch('run-old', {'fencing_token': new, 'state': 'canceled'}), status.HTTP_200_OK
        )
        self.assertHttpStatus(self.create('run-new', new), status.HTTP_201_CREATED)

    def test_token_never_issued_refused(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-x', token + 1), status.HTTP_409_CONFLICT)

    def test_run_lifecycle_drives_root(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-1', token), status.HTTP_201_CREATED)
        root = self.client.get(api('root-detail', pk=self.root.pk), **self.header).json()
        self.assertEqual((root['status'], root['last_run']['run_id']), ('reconciling', 'run-1'))

        response = self.patch(
            'run-1',
            {
                'fencing_token': token,
                'state': 'awaiting_approval',
                'awx_job_type': 'workflow',
                'awx_job_id': 17,
                'awx_job_url': 'https://awx.example/#/jobs/workflow/17',
            },
        )
        self.assertHttpStatus(response, status.HTTP_200_OK)
        root = self.client.get(api('root-detail', pk=self.root.pk), **self.header).json()
        self.assertEqual(root['status'], 'awaiting_approval')

        log = [
            {'ts': '2026-11-22T10:00:00Z', 'level': 'info', 'message': 'changed=2', 'meta': {'host': 'ns1'}}
        ]
        response = self.patch(
            'run-1',
            {
                'fencing_token': token,
                'state': 'succeeded',
                'outcome_class': 'ok',
                'summary': 'converged',
                'log_lines': log,
            },
        )
        self.assertHttpStatus(response, status.HTTP_200_OK)
        self.assertIsNotNone(response.json()['finished'])
        self.assertEqual(response.json()['log_lines'][0]['message'], 'changed=2')
        self.client.post(
            api('root-lease-release', pk=self.root.pk), {'token': token}, format='json', **self.header
        )
        root_obj = Root.objects.get(pk=self.root.pk)
        self.assertEqual(root_obj.last_reconciled_hash, HASH_A)
        # Terminal is final (the state machine: test_run_states.py).
        response = self.patch('run-1', {'fencing_token': token, 'state': 'running'})
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertEqual((response.json()['state'], response.json()['allowed']), ('succeeded', []))

    def test_failed_and_drifted_status(self):
        token = self.lease('w')
        self.create('run-f', token)
        self.patch(
            'run-f', {'fencing_token': token, 'state': 'failed', 'outcome_class': 'executor_unavailable'}
        )
        self.client.post(
            api('root-lease-release', pk=self.root.pk), {'token': token}, format='json', **self.header
        )
        self.assertEqual(Root.objects.select_related('last_run').get(pk=self.root.pk).status, 'failed')
        self.create('run-d', token)
        self.patch('run-d', {'fencing_token': token, 'state': 'succeeded', 'outcome_class': 'drift'})
        self.assertEqual(Root.objects.select_related('last_run').get(pk=self.root.pk).status, 'drifted')

    def test_in_sync_when_reconciled_hash_is_current(self):
        from unicop.roots import refresh_hash

        current = refresh_hash(self.root)
        token = self.lease('w')
        self.create('run-s', token, snapshot_hash=current)
        self.patch('run-s', {'fencing_token': token, 'state': 'succeeded'})
        self.client.post(
            api('root-lease-release', pk=self.root.pk), {'token': token}, format='json', **self.header
        )
        self.assertEqual(Root.objects.select_related('last_run').get(pk=self.root.pk).status, 'in_sync')

    def test_malformed_run(self):
        response = self.client.post(
            api('reconciliationrun-list'),
            {'run_id': 'r', 'root': 'site/999999', 'snapshot_hash': 'nothex', 'cause': 'whim'},
            format='json',
            **self.header,
        )
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        self.assertTrue({'root', 'snapshot_hash', 'cause', 'fencing_token'} <= set(response.json()))

    def test_patch_needs_token(self):
        token = self.lease('w')
        self.create('run-t', token)
        response = self.patch('run-t', {'state': 'running'})
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        self.assertIn('fencing_token', response.json())

    def test_unknown_run(self):
        self.assertHttpStatus(self.patch('nope', {'fencing_token': 1}), status.HTTP_404_NOT_FOUND)

    def test_no_bulk_patch(self):
        response = self.client.patch(
            api('reconciliationrun-list'), [{'id': 1, 'fencing_token': 1}], format='json', **self.header
        )
        self.assertHttpStatus(response, status.HTTP_405_METHOD_NOT_ALLOWED)


class RunJournalTestCase(RunWriteTestCase):
    def journal(self):
        return JournalEntry.objects.filter(
            assigned_object_type=ContentType.objects.get_for_model(Site), assigned_object_id=self.site.pk
        )

    def test_patch_journals_on_the_anchor(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-j', token), status.HTTP_201_CREATED)
        response = self.patch(
            'run-j',
            {
                'fencing_token': token,
                'state': 'succeeded',
                'journal': {'kind': 'success', 'comments': 'run-j converged: 2 changed'},
            },
        )
        self.assertHttpStatus(response, status.HTTP_200_OK)
        self.assertNotIn('journal', response.json(), 'write-only')
        entry = self.journal().get()
        self.assertEqual(
            (entry.kind, entry.comments, entry.created_by),
            ('success', 'run-j converged: 2 changed', self.user),
        )
        self.assertEqual(JournalEntry.objects.count(), 1, 'one entry, on the anchor only')

    def test_create_journals_on_the_anchor(self):
        token = self.lease('w')
        response = self.create('run-c', token, journal={'kind': 'info', 'comments': 'run-c started'})
        self.assertHttpStatus(response, status.HTTP_201_CREATED)
        self.assertEqual(list(self.journal().values_list('kind', 'comments')), [('info', 'run-c started')])

    def test_refused_write_journals_nothing(self):
        old = self.lease('worker-old')
        self.assertHttpStatus(self.create('run-old', old), status.HTTP_201_CREATED)
        self.expire()
        new = self.lease('worker-new')
        entry = {'kind': 'danger', 'comments': 'stale outcome'}
        # Stale token (PATCH and POST), a token never issued, and a change to a terminal run: all 409.
        response = self.patch('run-old', {'fencing_token': old, 'state': 'failed', 'journal': entry})
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertHttpStatus(self.create('run-old-2', old, journal=entry), status.HTTP_409_CONFLICT)
        response = self.patch('run-old', {'fencing_token': new + 1, 'state': 'failed', 'journal': entry})
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertHttpStatus(
            self.patch('run-old', {'fencing_token': new, 'state': 'canceled'}), status.HTTP_200_OK
        )
        response = self.patch('run-old', {'fencing_token': new, 'state': 'succeeded', 'journal': entry})
        self.assertHttpStatus(response, status.HTTP_409_CONFLICT)
        self.assertFalse(self.journal().exists())
        self.assertEqual(ReconciliationRun.objects.get(run_id='run-old').state, 'canceled')

    def test_malformed_journal(self):
        token = self.lease('w')
        self.assertHttpStatus(self.create('run-m', token), status.HTTP_201_CREATED)
        for journal, field in (
            ({'kind': 'shout', 'comments': 'x'}, 'kind'),
            ({'kind': 'info', 'comments': ''}, 'comments'),
            ({'kind': 'info', 'comments': '   '}, 'comments'),
            ({'kind': 'info', 'comments': 'x' * 4001}, 'comments'),
            ({'comments': 'x'}, 'kind'),
            ({'kind': 'info'}, 'comments'),
        ):
            with self.subTest(journal=journal):
                response = self.patch(
                    'run-m', {'fencing_token': token, 'state': 'running', 'journal': journal}
                )
                self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
                self.assertEqual(list(response.json()), ['journal'])
                self.assertIn(field, response.json()['journal'])
        response = self.patch('run-m', {'fencing_token': token, 'journal': 'done'})
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        self.assertIn('journal', response.json())
        response = self.create('run-m2', token, journal={'kind': 'info', 'comments': ''})
        self.assertHttpStatus(response, status.HTTP_400_BAD_REQUEST)
        self.assertIn('comments', response.json()['journal'])
        self.assertFalse(self.journal().exists())
        self.assertEqual(ReconciliationRun.objects.get(run_id='run-m').state, 'leased')
        self.assertFalse(ReconciliationRun.objects.filter(run_id='run-m2').exists())

    def test_longest_comments_accepted(self):
        token = self.lease('w')
        self.create('run-l', token)
        comments = 'x' * 4000
        response = self.patch(
            'run-l', {'fencing_token': token, 'journal': {'kind': 'warning', 'comments': comments}}
        )
        self.assertHttpStatus(response, status.HTTP_200_OK)
        self.assertEqual(self.journal().get().comments, comments)
