"""Benchmark data inside NetBox (run by bench/plugin/run via `netbox shell`): one prefix with 1,000 IP
addresses (a 1,000-member root) and 10,000 sites (10,000 roots), all named `unicop-bench-*`, then the
root rows and current hashes via `unicop_sync_roots` (timed). UNICOP_BENCH_CLEANUP=1 removes them."""

import os
import time

import netaddr
from dcim.models import Site
from django.core.management import call_command
from ipam.models import IPAddress, Prefix

from unicop.models import Root

SITES = int(os.environ.get('UNICOP_BENCH_SITES', '10000'))
MEMBERS = int(os.environ.get('UNICOP_BENCH_MEMBERS', '1000'))
PREFIX = '10.200.0.0/20'  # 4,094 hosts: room for 1,000 members
TAG = 'unicop-bench'

if os.environ.get('UNICOP_BENCH_CLEANUP'):
    t = time.monotonic()
    prefix = Prefix.objects.filter(prefix=PREFIX, description=TAG).first()
    if prefix:
        Root.objects.filter(key=f'prefix/{prefix.pk}').delete()
        IPAddress.objects.filter(description=TAG).delete()
        prefix.delete()
    ids = list(Site.objects.filter(slug__startswith=f'{TAG}-').values_list('pk', flat=True))
    Root.objects.filter(kind='site', anchor_id__in=ids).delete()
    # bulk_create made them without signals (no change log, search cache or related objects), so a raw
    # delete is exact, and minutes faster than NetBox's per-object cascade checks.
    Site.objects.filter(pk__in=ids)._raw_delete(Site.objects.db)
    print(f'cleanup: removed {len(ids)} sites and the bench prefix in {time.monotonic() - t:.1f}s')
else:
    prefix, _ = Prefix.objects.get_or_create(prefix=PREFIX, description=TAG)
    net = netaddr.IPNetwork(PREFIX)
    have = IPAddress.objects.filter(description=TAG).count()
    IPAddress.objects.bulk_create([
        IPAddress(address=netaddr.IPNetwork(f'{net[i + 1]}/20'), dns_name=f'host{i}.bench.example',
                  description=TAG)
        for i in range(have, MEMBERS)
    ])
    have_sites = Site.objects.filter(slug__startswith=f'{TAG}-').count()
    Site.objects.bulk_create([Site(name=f'{TAG}-{i}', slug=f'{TAG}-{i}') for i in range(have_sites, SITES)],
                             batch_size=1000)
    t = time.monotonic()
    call_command('unicop_sync_roots')
    sync = time.monotonic() - t
    root = Root.objects.get(key=f'prefix/{prefix.pk}')
    Root.objects.filter(pk=root.pk).update(hash_dirty=True)
    print(f'BENCH prefix_root_id={root.pk} sync_seconds={sync:.1f} roots={Root.objects.count()}')
