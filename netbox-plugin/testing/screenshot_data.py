"""Demo data for the UI screenshots (run by netbox-plugin/testing/screenshots via `netbox shell`):
a site `fra1` with devices, a rack and a VLAN whose last run failed (AWX link, log lines); a prefix
10.20.30.0/24 with named IPs reconciled at its current hash; a frozen site `ams2`; and a session for
the user `unicop-docs` (printed as SESSION=<key>, for the screenshot proxy; no password involved)."""

import uuid
from datetime import timedelta

from dcim.models import Device, DeviceRole, DeviceType, Manufacturer, Rack, Site
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone
from ipam.models import VLAN, IPAddress, Prefix
from users.models import User

from unicop import leases
from unicop.api.views import record_run_on_root, set_frozen
from unicop.models import ReconciliationRun, Root
from unicop.roots import refresh_hash

user, _ = User.objects.get_or_create(username='unicop-docs', defaults={'email': 'docs@unicop.invalid'})
user.is_superuser = True
user.set_unusable_password()
user.save()

site, _ = Site.objects.get_or_create(slug='fra1', defaults={'name': 'fra1', 'description': 'Frankfurt 1'})
manufacturer, _ = Manufacturer.objects.get_or_create(slug='acme', defaults={'name': 'Acme'})
dtype, _ = DeviceType.objects.get_or_create(
    slug='edge-48', defaults={'model': 'Edge 48', 'manufacturer': manufacturer}
)
role, _ = DeviceRole.objects.get_or_create(slug='leaf', defaults={'name': 'Leaf'})
for name in ('fra1-leaf1', 'fra1-leaf2', 'fra1-spine1'):
    Device.objects.get_or_create(name=name, site=site, defaults={'device_type': dtype, 'role': role})
Rack.objects.get_or_create(name='R01', site=site)
VLAN.objects.get_or_create(vid=120, site=site, defaults={'name': 'servers'})

prefix = Prefix.objects.filter(prefix='10.20.30.0/24', vrf=None).first() or Prefix.objects.create(
    prefix='10.20.30.0/24', description='servers fra1'
)
for i, name in enumerate(('web1', 'web2', 'db1', 'cache1'), start=10):
    IPAddress.objects.get_or_create(address=f'10.20.30.{i}/24', defaults={'dns_name': f'{name}.example.net'})

ams, _ = Site.objects.get_or_create(slug='ams2', defaults={'name': 'ams2'})


def run(root, state, **extra):
    root.refresh_from_db()
    lease = leases.acquire(root.pk, 'reconciler-7f3c', 120)
    started = timezone.now() - timedelta(minutes=3)
    r = ReconciliationRun.objects.create(
        run_id=str(uuid.uuid4()),
        root=root,
        snapshot_hash=refresh_hash(root),
        fencing_token=lease.lease_token,
        cause='change',
        state=state,
        started=started,
        finished=started + timedelta(seconds=41),
        **extra,
    )
    record_run_on_root(Root.objects.get(pk=root.pk), r)
    leases.release(root.pk, lease.lease_token)
    return r


prefix_root = Root.objects.get(key=f'prefix/{prefix.pk}')
site_root = Root.objects.get(key=f'site/{site.pk}')
if not prefix_root.runs.exists():
    run(
        prefix_root,
        'succeeded',
        awx_job_type='job',
        awx_job_id=311,
        outcome_class='ok',
        awx_job_url='http://awx.example/#/jobs/playbook/311',
        summary='changed=2 (A + PTR records)',
    )
if not site_root.runs.exists():
    run(
        site_root,
        'succeeded',
        awx_job_type='job',
        awx_job_id=305,
        outcome_class='ok',
        awx_job_url='http://awx.example/#/jobs/playbook/305',
        summary='inventory written',
    )
    run(
        site_root,
        'failed',
        awx_job_type='job',
        awx_job_id=318,
        outcome_class='executor_unavailable',
        awx_job_url='http://awx.example/#/jobs/playbook/318',
        summary='AWX answered 503 three times',
        log_lines=[
            {'ts': '2026-11-22T02:40:01Z', 'level': 'info', 'message': 'lease taken', 'meta': {'token': 3}},
            {
                'ts': '2026-11-22T02:40:02Z',
                'level': 'info',
                'message': 'snapshot read',
                'meta': {'members': 5},
            },
            {
                'ts': '2026-11-22T02:40:03Z',
                'level': 'error',
                'message': 'launch failed: AWX 503',
                'meta': {'template': 12},
            },
        ],
    )
ams_root = Root.objects.get(key=f'site/{ams.pk}')
if not ams_root.frozen:
    set_frozen(ams_root, True, 'DC migration until Friday (CHG-2231)', user)

session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(
    f'IDS site={site.pk} prefix={prefix.pk} site_root={site_root.pk} prefix_root={prefix_root.pk} '
    f'run={site_root.runs.order_by("-started").first().pk}'
)
print(f'SESSION={session.session_key}')
