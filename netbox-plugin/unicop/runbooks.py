"""Which runbook (docs/runbooks/) each failure class of the reconciler (workers/reconciler/policy.ts)
links to — the one place that map is declared. The plugin links a failed run to it (the run page, the
root's timeline, `runbook` in the run API) and `unicop root why` reads the link from the run.
test/docs/runbooks.test.ts fails when a failure class has no entry here or an entry names no file.

A link is the plugin setting `runbooks_url` (where the operator's copy of docs/runbooks/ is served; by
default the path inside the repository) joined with the file name. A run without a failure class, or
with one not named here has none. `drift` and `drift_unknown` are check runs' outcome classes
(docs/decisions/0054): a drifted run links to the runbook of a drifted root.
"""

from django.conf import settings

FAILURE_CLASS_RUNBOOKS = {
    'executor_unavailable': 'awx-unavailable.md',
    'template_misconfigured': 'template-misconfigured.md',
    'job_failed': 'run-timed-out-or-denied.md',
    'job_error': 'awx-unavailable.md',
    'canceled': 'run-timed-out-or-denied.md',
    'timed_out': 'run-timed-out-or-denied.md',
    'denied': 'run-timed-out-or-denied.md',
    'lease_lost': 'worker-crash.md',
    'drift': 'root-drifted.md',
    'drift_unknown': 'root-drifted.md',
    'invalid_snapshot': 'invalid-snapshot.md',
    'netbox_inconsistent': 'unicop-froze-itself.md',
    'verify_failed': 'verify-failed.md',
}


def runbook_url(failure_class):
    """The link to the runbook of `failure_class`, or None."""
    name = FAILURE_CLASS_RUNBOOKS.get(failure_class or '')
    if name is None:
        return None
    base = settings.PLUGINS_CONFIG.get('unicop', {}).get('runbooks_url', 'docs/runbooks/')
    return f'{base.rstrip("/")}/{name}'
