"""Run writes behind the root's fence (DESIGN.md §2 Run, §3.2): who may write a run, and what follows.

One run write is one transaction with the root row locked (SELECT … FOR UPDATE), in this order:
the fencing token (leases.check_fence: 409 when stale or never issued), the state change
(run_states: 409 naming the allowed next states), the journal entry it carries (validated, 400 when
malformed), the run itself (stored by the caller's `save`, which keeps NetBox's object permissions),
then the root follows its newest run (last run, last reconciled hash) and the journal entry is saved.
A refused write changes nothing: no run, no journal entry, no root update.

The functions take plain values and raise domain errors (leases.LeaseConflict,
run_states.RunStateConflict, InvalidJournal); api/views.py turns them into HTTP answers.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from extras.models import JournalEntry

from . import leases, run_states
from .models import ReconciliationRun, Root, RunModeChoices, RunStateChoices


class InvalidJournal(Exception):
    """400: the journal entry a run write carries is not a valid JournalEntry (carries its messages)."""

    status_code = 400

    def __init__(self, messages):
        super().__init__('; '.join(messages))
        self.messages = list(messages)


def create_run(root_id, fencing_token, state, journal, user, save):
    """A new run on root `root_id` in `state` (None: the model's default), behind the fence.
    `save()` stores the run and returns it; returns the saved run."""
    if state is None:
        state = ReconciliationRun._meta.get_field('state').default
    return _write(root_id, fencing_token, journal, user, save, lambda: run_states.check_create(state))


def update_run(run, fencing_token, state, journal, user, save):
    """A change to `run` behind its root's fence; `state` None keeps the run's state. The run's state is
    re-read under the root's lock before the transition is checked. `save()` stores the run and returns it."""

    def check_state():
        run.refresh_from_db(fields=['state'])
        run_states.check_move(run.state, run.state if state is None else state)

    return _write(run.root_id, fencing_token, journal, user, save, check_state)


def _write(root_id, fencing_token, journal, user, save, check_state):
    with transaction.atomic():
        root = Root.objects.select_for_update().get(pk=root_id)
        leases.check_fence(root, fencing_token)
        check_state()
        entry = journal_entry(root, journal, user)
        run = save()
        record_run_on_root(root, run)
        if entry is not None:
            save_journal_entry(entry)
        return run


def save_journal_entry(entry):
    """Stores a run's journal entry (validated by journal_entry) with one INSERT and no post_save signal
    (docs/decisions/0064): NetBox 4.7 answers every save of a searchable object with a deferred search-index
    job on its RQ worker (netbox.search: caching_handler -> mark_for_deferred_indexing -> a "Search cache
    update" job after commit) — one job and one forked work horse per run, its largest background cost —
    and with a change-log record. The entry is on the anchor's Journal tab and the run's page as before;
    it is not in NetBox's global search (nor are the runs it summarises: decision 0045)."""
    JournalEntry.objects.bulk_create([entry])


def journal_entry(root, journal, user):
    """The journal entry `{kind, comments}` a run write carries, on the root's anchor object, validated and
    not yet saved (saved after the run, in the run's transaction and behind its fence), or None."""
    if journal is None:
        return None
    entry = JournalEntry(
        assigned_object_type_id=root.anchor_type_id,
        assigned_object_id=root.anchor_id,
        created_by=user if user.is_authenticated else None,
        kind=journal['kind'],
        comments=journal['comments'],
    )
    try:
        entry.full_clean()
    except ValidationError as exc:
        raise InvalidJournal(exc.messages) from exc
    return entry


def record_run_on_root(root, run):
    """The root's last run and last reconciled hash follow its newest run (called with the root locked);
    a run reaching a terminal state gets its finish time. A check run (docs/decisions/0054) changes nothing
    at the target, so it never moves the last reconciled hash; its end is the root's last drift check."""
    update = {}
    if run.state in RunStateChoices.TERMINAL and run.finished is None:
        run.finished = timezone.now()
        ReconciliationRun.objects.filter(pk=run.pk).update(finished=run.finished)
    last = ReconciliationRun.objects.filter(pk=root.last_run_id).only('started', 'id').first()
    if last is None or (run.started, run.pk) >= (last.started, last.pk):
        update['last_run'] = run
    if run.mode == RunModeChoices.CHECK:
        if run.state in RunStateChoices.TERMINAL:
            update['last_drift_check'] = run.finished
    elif run.state == RunStateChoices.SUCCEEDED:
        update['last_reconciled_hash'] = run.snapshot_hash
    if update:
        Root.objects.filter(pk=root.pk).update(**update)
