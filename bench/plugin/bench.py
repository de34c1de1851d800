"""HTTP benchmarks of the unicop plugin API against the stack's NetBox (gunicorn): snapshot of a
1,000-member root, bulk listing over all roots (keyset pages), lease acquire + release round trip.
Prints a markdown section for docs/benchmarks.md. Usage: bench/plugin/run (sets up the data)."""

import json
import os
import statistics
import sys
import time
import urllib.request

BASE = os.environ['UNICOP_NETBOX_URL'].rstrip('/') + '/api/plugins/unicop/'
TOKEN = os.environ['UNICOP_NETBOX_TOKEN']


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {'Authorization': f'Bearer {TOKEN}', 'Accept': 'application/json',
               'Content-Type': 'application/json'}
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)  # noqa: S310 -- stack URL
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 -- the stack's own URL
        raw = resp.read()
    return (time.perf_counter() - t) * 1000, raw


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def main(prefix_root_id, sync_seconds):
    out = []
    # Snapshot of the 1,000-member root: first call after a change (dirty) and 20 steady calls.
    ms, raw = call('GET', f'roots/{prefix_root_id}/snapshot/')
    snap = json.loads(raw)
    members = len(snap['snapshot']['members'])
    runs = [call('GET', f'roots/{prefix_root_id}/snapshot/')[0] for _ in range(20)]
    hashes = {json.loads(call('GET', f'roots/{prefix_root_id}/snapshot/')[1])['hash'] for _ in range(3)}
    out.append(('snapshot', members, len(raw), runs, len(hashes)))

    # Bulk listing: walk every root with keyset pages.
    listing = {}
    for limit in (100, 1000):
        pages, total, cursor, t = [], 0, None, time.perf_counter()
        while True:
            ms, raw = call('GET', f'roots/?limit={limit}' + (f'&cursor={cursor}' if cursor else ''))
            body = json.loads(raw)
            pages.append(ms)
            total += len(body['results'])
            cursor = body['next_cursor']
            if not cursor:
                break
        listing[limit] = (total, len(pages), time.perf_counter() - t, pages)

    # Lease acquire + release round trips (sequential, one client).
    rounds = []
    for _ in range(200):
        t = time.perf_counter()
        _, raw = call('POST', f'roots/{prefix_root_id}/lease/', {'holder': 'bench', 'ttl_seconds': 30})
        call('POST', f'roots/{prefix_root_id}/lease/release/', {'token': json.loads(raw)['token']})
        rounds.append((time.perf_counter() - t) * 1000)

    _, members, size, runs, distinct = out[0]
    print('| measurement | result |')
    print('| --- | --- |')
    print(f'| snapshot of a {members}-member prefix root, {size / 1024:.0f} KiB | '
          f'p50 {statistics.median(runs):.0f} ms, p95 {pct(runs, 95):.0f} ms (20 calls); '
          f'{distinct} distinct hash over 3 more calls |')
    for limit, (total, npages, secs, pages) in listing.items():
        print(f'| listing all {total} roots, limit={limit} ({npages} pages) | {secs:.2f} s total, '
              f'{total / secs:.0f} roots/s, page p50 {statistics.median(pages):.0f} ms, '
              f'p95 {pct(pages, 95):.0f} ms |')
    print(f'| lease acquire + release round trip (200 sequential) | p50 {statistics.median(rounds):.1f} ms, '
          f'p99 {pct(rounds, 99):.1f} ms |')
    print(f'| `unicop_sync_roots` creating and hashing the bench roots | {sync_seconds} s |')


if __name__ == '__main__':
    main(int(sys.argv[1]), sys.argv[2])
