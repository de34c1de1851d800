"""Recomputes stale current hashes of roots in the background (docs/decisions/0043): the process that
keeps `current_hash` fresh, run beside NetBox's RQ worker (`netbox unicop_hashes`; the stack starts it
with gunicorn and the RQ worker). Changes only mark roots stale in their own transaction; this process
takes the oldest stale roots in batches and stores each hash with a compare-and-set, so it may be
stopped, killed or run twice at any time (two processes skip each other's locked rows; a hash stored
twice is the same hash). While the database is away it waits and tries again; a root whose snapshot
fails is logged and left stale (the sweeper still reconciles it: a stale root always gets an intent)
and tried again after a while.
"""

import signal
import time

from django.core.management.base import BaseCommand
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from unicop.hashes import BATCH, recompute_all_stale, recompute_stale
from unicop.models import Root

IDLE_SECONDS = 0.5  # the wait between passes that found nothing stale: the staleness floor
RETRY_FAILED_SECONDS = 300  # a root whose snapshot failed is tried again after this long
DATABASE_RETRY_SECONDS = 5  # the wait after the database did not answer


class Command(BaseCommand):
    help = 'Recompute stale current hashes of roots, continuously (or once with --once).'

    def add_arguments(self, parser):
        parser.add_argument('--once', action='store_true', help='recompute what is stale now, then exit')
        parser.add_argument('--batch', type=int, default=BATCH, help=f'roots per pass ({BATCH})')
        parser.add_argument(
            '--idle-seconds',
            type=float,
            default=IDLE_SECONDS,
            help=f'wait when nothing is stale ({IDLE_SECONDS})',
        )

    def handle(self, *args, once=False, batch=BATCH, idle_seconds=IDLE_SECONDS, **options):
        if once:
            stored, failed = recompute_all_stale(batch)
            for root_id, error in failed.items():
                self.stderr.write(f'root {root_id}: snapshot failed, left stale: {error}')
            self.stdout.write(f'{stored} current hashes recomputed, {len(failed)} failed')
            return
        stopping = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.append(True))
        self.log(f'recomputing stale current hashes (batch {batch}, idle wait {idle_seconds} s)')
        failed = {}  # root id -> monotonic time after which it is tried again
        while not stopping:
            now = time.monotonic()
            failed = {k: v for k, v in failed.items() if v > now}
            try:
                close_old_connections()
                started = time.monotonic()
                result = recompute_stale(batch, exclude=failed)
            except (OperationalError, InterfaceError) as exc:
                self.log(
                    f'database unavailable ({exc.__class__.__name__}); '
                    f'trying again in {DATABASE_RETRY_SECONDS} s'
                )
                connection.close()
                time.sleep(DATABASE_RETRY_SECONDS)
                continue
            for root_id, error in result.failed:
                failed[root_id] = time.monotonic() + RETRY_FAILED_SECONDS
                self.log(
                    f'root {root_id}: snapshot failed, left stale, '
                    f'next try in {RETRY_FAILED_SECONDS} s: {error}'
                )
            if result.taken:
                self.log(
                    f'{result.stored} current hashes stored in {(time.monotonic() - started) * 1000:.0f} ms '
                    f'({result.changed} changed again meanwhile, {len(result.failed)} failed); '
                    f'{Root.objects.filter(hash_dirty=True).count()} stale'
                )
            if result.taken < batch:
                time.sleep(idle_seconds)
        self.log('stopped')

    def log(self, message):
        self.stdout.write(f'{timezone.now().isoformat(timespec="milliseconds")} unicop_hashes: {message}')
        self.stdout.flush()
