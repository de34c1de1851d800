"""Where the plugin's resolver spends one batch (run by bench/resolver.ts through `netbox shell`), inside
NetBox's process, without HTTP: the request's validation (the resolve endpoint's serializer), the batch's
resolution (`resolve_changes`, decision 0046) and, for comparison in the same process, the same changes
resolved one at a time (one call per change: the per-change queries resolution had before 0046). SQL
queries are counted with Django's CaptureQueriesContext. Reads only.

Input: UNICOP_BENCH_RESOLVE_IPS, a JSON list of [id, address] of existing IP addresses; the batch is
UNICOP_BENCH_RESOLVE_BATCH changes (default 500) shaped as the bench's change events (an update, REST
`data` and `postchange` with the id and the address). Each figure is the median of 5 rounds.

Output: one line `BENCH resolve_profile batch=N validate_ms=… batch_ms=… batch_queries=…
one_by_one_ms=… one_by_one_queries=…`."""

import json
import os
import statistics
import time

from django.db import connection
from django.test.utils import CaptureQueriesContext

from unicop.api.serializers import ResolveRequestSerializer
from unicop.roots import resolve_changes

IPS = json.loads(os.environ['UNICOP_BENCH_RESOLVE_IPS'])
BATCH = int(os.environ.get('UNICOP_BENCH_RESOLVE_BATCH', '500'))
ROUNDS = 5


def change(n):
    ip_id, address = IPS[n % len(IPS)]
    fields = {'id': ip_id, 'address': address}
    return {
        'object_type': 'ipam.ipaddress',
        'object_id': ip_id,
        'event': 'updated',
        'data': fields,
        'prechange': None,
        'postchange': fields,
    }


def measured(work):
    """Median milliseconds of ROUNDS runs of `work`, and the SQL queries of one run."""
    times = []
    queries = 0
    for _ in range(ROUNDS):
        with CaptureQueriesContext(connection) as captured:
            start = time.perf_counter()
            work()
            times.append((time.perf_counter() - start) * 1000)
        queries = len(captured.captured_queries)
    return statistics.median(times), queries


def validated():
    s = ResolveRequestSerializer(data={'changes': [change(n) for n in range(BATCH)]})
    s.is_valid(raise_exception=True)
    return s.validated_data['changes']


changes = validated()
validate_ms, _ = measured(validated)
batch_ms, batch_queries = measured(lambda: resolve_changes(changes))
one_ms, one_queries = measured(lambda: [resolve_changes([c]) for c in changes])
print(
    f'BENCH resolve_profile batch={BATCH} validate_ms={validate_ms:.1f} batch_ms={batch_ms:.1f} '
    f'batch_queries={batch_queries} one_by_one_ms={one_ms:.1f} one_by_one_queries={one_queries}'
)
