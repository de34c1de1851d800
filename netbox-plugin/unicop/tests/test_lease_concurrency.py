"""Concurrent lease acquisition against the real PostgreSQL: many threads (each with its own database
connection) and many forked processes race for one root; exactly one wins, the others get a conflict
naming the winner, and the token issued is 1. A positive control runs the same race with the row lock
taken out (and a pause between read and write): then several acquirers win, so the race really happens
and the test would notice two holders. Also: snapshot reads run in a REPEATABLE READ transaction.

The data is committed from a helper thread (other connections must see it) and removed afterwards, so
the kept test database stays clean."""

import multiprocessing
import threading
import time
from unittest import mock

from django.db import close_old_connections, connection, connections
from django.test import TransactionTestCase
from ipam.models import Prefix

from unicop import leases, snapshot
from unicop.models import Root

RACERS = 8


def in_thread(fn):
    """Runs fn in a new thread (its own, autocommitting connection) and returns its result."""
    box = {}

    def run():
        try:
            box['value'] = fn()
        except BaseException as exc:  # re-raised in the caller
            box['error'] = exc
        finally:
            connection.close()

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if 'error' in box:
        raise box['error']
    return box.get('value')


def _try_acquire(root_id, holder):
    try:
        return ('won', leases.acquire(root_id, holder, 60).lease_token)
    except leases.LeaseConflict as exc:
        return ('lost', exc.holder)


def _slow_save(original):
    def save(root, **fields):
        time.sleep(0.3)  # widen the window between reading the lease and writing it
        return original(root, **fields)

    return save


def _unlocked(root_id):
    return Root.objects.get(pk=root_id)


class CommittedRootMixin:
    """A prefix (and so its root) committed by another connection, deleted after the test."""

    def setUp(self):
        self.prefix_id = in_thread(lambda: Prefix.objects.create(prefix='10.250.0.0/24').pk)
        self.root_id = in_thread(lambda: Root.objects.get(key=f'prefix/{self.prefix_id}').pk)

    def tearDown(self):
        in_thread(lambda: Prefix.objects.filter(pk=self.prefix_id).delete())


class ThreadRaceTestCase(CommittedRootMixin, TransactionTestCase):
    # Only this plugin's rows are touched, and cleaned up by tearDown: skip TransactionTestCase's flush.
    available_apps = None

    def _fixture_teardown(self):
        pass

    def race(self):
        barrier = threading.Barrier(RACERS)
        results = [None] * RACERS

        def racer(i):
            try:
                barrier.wait()
                results[i] = _try_acquire(self.root_id, f'thread-{i}')
            finally:
                connections.close_all()

        threads = [threading.Thread(target=racer, args=(i,)) for i in range(RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return results

    def test_one_winner(self):
        with mock.patch.object(leases, '_save_lease', _slow_save(leases._save_lease)):
            results = self.race()
        winners = [r for r in results if r[0] == 'won']
        self.assertEqual(len(winners), 1, results)
        self.assertEqual(winners[0][1], 1)
        holder = Root.objects.get(pk=self.root_id).lease_holder
        self.assertTrue(all(r[1] == holder for r in results if r[0] == 'lost'), results)
        self.assertEqual(Root.objects.get(pk=self.root_id).highest_token, 1)

    def test_positive_control_without_row_lock(self):
        with (
            mock.patch.object(leases, '_save_lease', _slow_save(leases._save_lease)),
            mock.patch.object(leases, '_locked', _unlocked),
        ):
            results = self.race()
        self.assertGreater(
            len([r for r in results if r[0] == 'won']),
            1,
            'without the row lock the race should produce several winners',
        )

    def test_snapshot_reads_repeatable_read(self):
        close_old_connections()
        root = Root.objects.get(pk=self.root_id)
        seen = []
        original = snapshot.build_snapshot

        def build(r, *rest):
            with connection.cursor() as cursor:
                cursor.execute('SHOW transaction_isolation')
                seen.append(cursor.fetchone()[0])
            return original(r, *rest)

        with mock.patch.object(snapshot, 'build_snapshot', build):
            snapshot.read_snapshot(root)
        self.assertEqual(seen, ['repeatable read'])


def _process_racer(root_id, index, barrier, out):
    connections.close_all()  # never share the parent's connection after fork
    try:
        barrier.wait()
        out.put((index, *_try_acquire(root_id, f'process-{index}')))
    finally:
        connections.close_all()


class ProcessRaceTestCase(CommittedRootMixin, TransactionTestCase):
    available_apps = None

    def _fixture_teardown(self):
        pass

    def test_one_winner_across_processes(self):
        ctx = multiprocessing.get_context('fork')
        barrier, out = ctx.Barrier(RACERS), ctx.Queue()
        connections.close_all()
        with mock.patch.object(leases, '_save_lease', _slow_save(leases._save_lease)):
            procs = [
                ctx.Process(target=_process_racer, args=(self.root_id, i, barrier, out))
                for i in range(RACERS)
            ]
            for p in procs:
                p.start()
            results = [out.get(timeout=60) for _ in procs]
            for p in procs:
                p.join(timeout=60)
        winners = [r for r in results if r[1] == 'won']
        self.assertEqual(len(winners), 1, results)
        root = Root.objects.get(pk=self.root_id)
        self.assertEqual((root.highest_token, root.lease_holder), (1, f'process-{winners[0][0]}'))
        self.assertTrue(all(r[2] == root.lease_holder for r in results if r[1] == 'lost'), results)
