"""The deploy suite's conversations with the composed NetBox (scripts/suites.d/40-deploy.sh), through
its published REST API, as a user would have them. Python's standard library only (runs on the host).

    compose_check.py edit                 create a site, edit its description; wait until a run of
                                          that root succeeded at the edited snapshot; print
                                          {"root", "run_id", "state", "hash"}
    compose_check.py many N               create N sites, edit each once more; wait until every root
                                          is in_sync with a succeeded last run at its current hash;
                                          print {"roots": [...], "runs": total}
    compose_check.py overlaps KEY...      every run of those roots; exit 1 naming any two runs of one
                                          root whose [started, finished] intervals overlap
    compose_check.py counts               {"sites", "roots", "runs"} (data kept across an upgrade)
    compose_check.py refused SITE_ID      the unicop token outside its permissions: deleting that
                                          site and listing webhooks answer 403, the site is still
                                          there, its object permissions are exactly accounts.py's
    compose_check.py awx-jobs KEY...      every run of those roots that launched an AWX job, asked of
                                          AWX itself (/api/v2/jobs/<id>/): the job exists, carries the
                                          run's id, is of the template the catalogue names for the
                                          root's kind, and its status agrees with the run's state
                                          (succeeded: successful); exit 1 naming any that do not

Environment: NETBOX_URL (http://127.0.0.1:PORT), NETBOX_TOKEN_FILE (the unicop token, nbt_..., for
reading), NETBOX_ADMIN_PASSWORD_FILE (the `admin` user's password: the edits are made as a person,
with a token provisioned for admin — UNICOP's own user's changes are echoes the bridge drops),
CHECK_TIMEOUT (seconds, default 600), CHECK_PREFIX (object name prefix, default deploy); for
awx-jobs: AWX_URL (AWX as the host reaches it), AWX_TOKEN_FILE (the workers' AWX token), PLUGIN_CONFIG
(the composed NetBox's root catalogue, JSON). Tokens and passwords are sent, never printed.
"""

import itertools
import json
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

URL = os.environ['NETBOX_URL'].rstrip('/')
TOKEN = Path(os.environ['NETBOX_TOKEN_FILE']).read_text().splitlines()[0].strip()
TIMEOUT = int(os.environ.get('CHECK_TIMEOUT', '600'))
PREFIX = os.environ.get('CHECK_PREFIX', 'deploy')


def api(method, path, body=None, token=None):
    """`path` is /api/... or a full URL NetBox gave (a page's `next`); `token` None: UNICOP's."""
    data = None if body is None else json.dumps(body).encode()
    headers = {'Accept': 'application/json', 'Content-Type': 'application/json'}
    if token != '':
        headers['Authorization'] = f'Bearer {token or TOKEN}'
    req = urllib.request.Request(  # noqa: S310 - the URL is the composed NetBox's, from the suite
        path if path.startswith('http') else f'{URL}{path}',
        data=data,
        method=method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as res:  # noqa: S310
            raw = res.read()
    except urllib.error.HTTPError as exc:
        raise SystemExit(f'NetBox {method} {path} -> {exc.code}: {exc.read()[:500]!r}') from None
    return json.loads(raw) if raw else None


def status_of(method, path, token=None):
    """The HTTP status of one request (`token` None: UNICOP's); no body sent, none returned."""
    req = urllib.request.Request(  # noqa: S310 - the URL is the composed NetBox's, from the suite
        f'{URL}{path}',
        method=method,
        headers={'Accept': 'application/json', 'Authorization': f'Bearer {token or TOKEN}'},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as res:  # noqa: S310
            return res.status
    except urllib.error.HTTPError as exc:
        return exc.code


_editor_token = None


def editor_token():
    """A token of the `admin` user, provisioned with its password once per process."""
    global _editor_token
    if _editor_token is None:
        password = Path(os.environ['NETBOX_ADMIN_PASSWORD_FILE']).read_text().splitlines()[0].strip()
        made = api(
            'POST', '/api/users/tokens/provision/', {'username': 'admin', 'password': password}, token=''
        )
        _editor_token = f'nbt_{made["key"]}.{made["token"]}'
    return _editor_token


def edit_api(method, path, body=None):
    """A change (or a read UNICOP's token may not make) as the `admin` user."""
    return api(method, path, body, token=editor_token())


def listing(path):
    """Every item of a NetBox page-numbered listing."""
    results, url = [], path
    while url:
        page = api('GET', url)
        results += page['results']
        url = page.get('next')
    return results


def all_roots():
    """Every root (the plugin's listing is keyset-paginated by cursor)."""
    results, cursor = [], ''
    while True:
        page = api('GET', f'/api/plugins/unicop/roots/?limit=1000{"&cursor=" + cursor if cursor else ""}')
        results += page['results']
        cursor = page.get('next_cursor')
        if not cursor:
            return results


def root(key):
    found = api('GET', f'/api/plugins/unicop/roots/?key={key}')['results']
    return found[0] if found else None


def runs(key):
    return listing(f'/api/plugins/unicop/runs/?root={key}&limit=1000')


def settled(key):
    """(root, run) when the root is in sync at its current hash and a run of that hash succeeded
    (the last run may be a later `skipped` one: an intent that came while the first run held the
    lease found the hash already reconciled); else None."""
    r = root(key)
    if not r or r['status'] != 'in_sync' or r['last_reconciled_hash'] != r['current_hash']:
        return None
    done = [x for x in runs(key) if x['state'] == 'succeeded' and x['snapshot_hash'] == r['current_hash']]
    return (r, done[0]) if done else None


def wait_settled(keys):
    deadline = time.monotonic() + TIMEOUT
    pending = list(keys)
    while pending:
        pending = [k for k in pending if settled(k) is None]
        if not pending:
            break
        if time.monotonic() > deadline:
            states = {
                k: ((root(k) or {}).get('status'), ((root(k) or {}).get('last_run') or {}).get('state'))
                for k in pending[:5]
            }
            raise SystemExit(f'{len(pending)} root(s) not reconciled within {TIMEOUT}s, e.g. {states}')
        time.sleep(2)


def make_sites(n, tag):
    sites = edit_api(
        'POST',
        '/api/dcim/sites/',
        [{'name': f'{PREFIX}-{tag}-{i}', 'slug': f'{PREFIX}-{tag}-{i}'} for i in range(n)],
    )
    return [s['id'] for s in sites]


def edit():
    tag = str(int(time.time()))
    (site_id,) = make_sites(1, f'edit-{tag}')
    key = f'site/{site_id}'
    deadline = time.monotonic() + TIMEOUT
    while root(key) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f'no root {key} appeared')
        time.sleep(1)
    edit_api(
        'PATCH',
        f'/api/dcim/sites/{site_id}/',
        {'description': f'edited through the composed NetBox at {tag}'},
    )
    wait_settled([key])
    r, run = settled(key)
    print(
        json.dumps(
            {
                'root': key,
                'run_id': run['run_id'],
                'state': run['state'],
                'hash': r['current_hash'],
                'awx_job_id': run['awx_job_id'],
            }
        )
    )


def many(n):
    tag = str(int(time.time()))
    ids = make_sites(n, f'many-{tag}')
    keys = [f'site/{i}' for i in ids]
    # A second change to every root while its first run may be under way: coalescing and the lease
    # have something to do.
    edit_api('PATCH', '/api/dcim/sites/', [{'id': i, 'description': f'second change {tag}'} for i in ids])
    wait_settled(keys)
    print(json.dumps({'roots': keys, 'runs': sum(len(runs(k)) for k in keys)}))


def parse_time(value):
    return datetime.fromisoformat(value.replace('Z', '+00:00'))


def overlaps(keys):
    problems, total = [], 0
    for key in keys:
        spans = sorted(
            (
                (
                    parse_time(r['started']),
                    parse_time(r['finished']) if r['finished'] else None,
                    r['run_id'],
                    r['state'],
                )
                for r in runs(key)
            ),
            key=lambda s: s[0],
        )
        total += len(spans)
        for (start_a, end_a, id_a, state_a), (start_b, _, id_b, _) in itertools.pairwise(spans):
            if end_a is None or start_b < end_a:
                problems.append(
                    f'{key}: run {id_a} ({state_a}, {start_a}..{end_a}) overlaps run {id_b} (from {start_b})'
                )
    print(json.dumps({'roots': len(keys), 'runs': total, 'overlaps': problems}))
    return 1 if problems else 0


def counts():
    sites = edit_api('GET', '/api/dcim/sites/?limit=1')['count']  # the unicop user may not read sites
    roots = len(all_roots())
    runs_count = api('GET', '/api/plugins/unicop/runs/?limit=1')['count']
    print(json.dumps({'sites': sites, 'roots': roots, 'runs': runs_count}))


# The unicop user's object permissions, as deploy/netbox/accounts.py grants them (type:actions).
UNICOP_PERMISSIONS = [
    'unicop.reconciliationrun:add+change+view',
    'unicop.rollout:change+view',
    'unicop.root:change+view',
]
# ...and view (only) on what a snapshot shows (decision 0048), for the stack's catalogue at least these.
SNAPSHOT_VIEW_AT_LEAST = {'dcim.site', 'dcim.device', 'extras.tag'}


def refused(site_id):
    """The unicop token outside its object permissions: NetBox answers 403 (a superuser's token
    would delete the site; webhooks, which show their secrets, are not for it to read), and the user
    holds exactly UNICOP_PERMISSIONS plus one view-only permission on the snapshot's objects."""
    delete = status_of('DELETE', f'/api/dcim/sites/{site_id}/')
    listing_webhooks = status_of('GET', '/api/extras/webhooks/')
    kept = status_of('GET', f'/api/dcim/sites/{site_id}/', token=editor_token()) == 200
    (user,) = edit_api('GET', '/api/users/users/?username=unicop')['results']
    perms = edit_api('GET', f'/api/users/permissions/?user_id={user["id"]}&limit=100')['results']
    held = sorted(
        f'{",".join(sorted(p["object_types"]))}:{"+".join(sorted(p["actions"]))}'
        for p in perms
        if p['enabled']
    )
    print(
        json.dumps(
            {'delete_site': delete, 'list_webhooks': listing_webhooks, 'site_kept': kept, 'permissions': held}
        )
    )
    others = [p for p in held if p not in UNICOP_PERMISSIONS]
    snapshot_view = (
        len(others) == 1
        and others[0].endswith(':view')
        and SNAPSHOT_VIEW_AT_LEAST <= set(others[0].split(':')[0].split(','))
        and all(p in held for p in UNICOP_PERMISSIONS)
    )
    return 0 if (delete, listing_webhooks, kept, snapshot_view) == (403, 403, True, True) else 1


# What AWX reports for a job of a run in each final state (AWX's job statuses).
AWX_STATUS_OF_RUN = {
    'succeeded': {'successful'},
    'failed': {'failed', 'error'},
    'canceled': {'canceled'},
    'timed_out': {'canceled'},
}


def awx_job(kind, job_id):
    """One job (`kind` job or workflow) as AWX reports it, with the workers' token (the relay is for
    the containers; the host asks AWX where it listens)."""
    token = Path(os.environ['AWX_TOKEN_FILE']).read_text().splitlines()[0].strip()
    endpoint = 'workflow_jobs' if kind == 'workflow' else 'jobs'
    req = urllib.request.Request(  # noqa: S310 - the stack's AWX, from the suite
        f'{os.environ["AWX_URL"].rstrip("/")}/api/v2/{endpoint}/{job_id}/',
        headers={'Accept': 'application/json', 'Authorization': f'Bearer {token}'},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as res:  # noqa: S310
            return json.loads(res.read())
    except urllib.error.HTTPError as exc:
        return {'id': job_id, 'status': f'HTTP {exc.code}'}


def awx_jobs(keys):
    """Each run of those roots that launched an AWX job, checked against AWX's own record of it."""
    catalogue = json.loads(Path(os.environ['PLUGIN_CONFIG']).read_text())['root_kinds']
    problems, ids, elapsed, statuses = [], [], [], {}
    for key in keys:
        template = catalogue[key.split('/')[0]]['awx_template']
        for run in runs(key):
            if not run['awx_job_id']:
                continue
            job = awx_job(run['awx_job_type'], run['awx_job_id'])
            ids.append(job['id'])
            statuses[job['status']] = statuses.get(job['status'], 0) + 1
            extra = json.loads(job.get('extra_vars') or '{}')
            found = {
                'status': job['status'],
                'run_id': (extra.get('unicop') or {}).get('run_id'),
                'template': job.get(
                    'workflow_job_template' if template['type'] == 'workflow' else 'job_template'
                ),
            }
            wanted = {
                'status': AWX_STATUS_OF_RUN.get(run['state'], set()),
                'run_id': run['run_id'],
                'template': template['id'],
            }
            if (
                found['status'] not in wanted['status']
                or found['run_id'] != wanted['run_id']
                or found['template'] != wanted['template']
            ):
                problems.append(f'{key} run {run["run_id"]} ({run["state"]}) / AWX job {job["id"]}: {found}')
            if job.get('elapsed'):
                elapsed.append(float(job['elapsed']))
    span = f'{min(ids)}..{max(ids)}' if ids else 'none'
    times = (
        f'{min(elapsed):.1f}/{sum(elapsed) / len(elapsed):.1f}/{max(elapsed):.1f} s' if elapsed else 'none'
    )
    summary = f'{len(ids)} job(s), ids {span}, {statuses}, elapsed in AWX min/mean/max {times}'
    print(json.dumps({'jobs': len(ids), 'summary': summary, 'problems': problems}))
    return 1 if problems or not ids else 0


if __name__ == '__main__':
    command, args = (sys.argv[1] if len(sys.argv) > 1 else ''), sys.argv[2:]
    if command == 'edit':
        edit()
    elif command == 'many':
        many(int(args[0]))
    elif command == 'overlaps':
        sys.exit(overlaps(args))
    elif command == 'counts':
        counts()
    elif command == 'refused':
        sys.exit(refused(int(args[0])))
    elif command == 'awx-jobs':
        sys.exit(awx_jobs(args))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
