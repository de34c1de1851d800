"""Roots (one anchor object bound to its kind, with freeze, hashes and the lease) and reconciliation runs.

Lease and hash bookkeeping is written with queryset.update() under a row lock, not save(): those writes
happen on every run and every member change, and must not fill NetBox's change log or fire event rules.
Freeze and unfreeze go through save() so that the human override is change-logged (who, when, why).
"""

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.urls import reverse
from django.utils import timezone
from netbox.models import NetBoxModel
from utilities.choices import ChoiceSet, ChoiceSetMeta

from . import run_states, runbooks


class RootStatusChoices(ChoiceSet):
    IN_SYNC = 'in_sync'
    PENDING = 'pending'
    RECONCILING = 'reconciling'
    AWAITING_APPROVAL = 'awaiting_approval'
    FAILED = 'failed'
    DRIFTED = 'drifted'
    FROZEN = 'frozen'
    HELD = 'held'

    CHOICES = [
        (IN_SYNC, 'In sync', 'green'),
        (PENDING, 'Pending', 'cyan'),
        (RECONCILING, 'Reconciling', 'blue'),
        (AWAITING_APPROVAL, 'Awaiting approval', 'purple'),
        (FAILED, 'Failed', 'red'),
        (DRIFTED, 'Drifted', 'orange'),
        (FROZEN, 'Frozen', 'gray'),
        (HELD, 'Held', 'yellow'),
    ]


# How each run state is shown (NetBox colour names); a state not named here is gray. Which states there
# are, which are final and the transitions between them: run_states.json (run_states.py), only there.
RUN_STATE_COLORS = {
    'leased': 'cyan',
    'launched': 'blue',
    'awaiting_approval': 'purple',
    'running': 'blue',
    'succeeded': 'green',
    'drifted': 'orange',
    'failed': 'red',
    'canceled': 'orange',
    'timed_out': 'red',
    'denied': 'orange',
}


def run_state_choices(states, terminal, colors=RUN_STATE_COLORS):
    """The run states' ChoiceSet, built from the state machine: one constant per state (QUEUED =
    'queued', ...), in the document's order, labelled from its name ('timed_out' -> 'Timed out');
    TERMINAL as the document says; UNSUCCESSFUL, the terminal states other than succeeded and skipped."""
    unknown = set(colors) - set(states)
    if unknown:
        raise ImproperlyConfigured(f'unicop: colours for states run_states.json lacks: {sorted(unknown)}')
    return ChoiceSetMeta(
        'RunStateChoices',
        (ChoiceSet,),
        {
            '__module__': __name__,
            '__doc__': 'The run states of run_states.json, as NetBox choices.',
            **{state.upper(): state for state in states},
            'CHOICES': [
                (state, state.replace('_', ' ').capitalize(), colors.get(state, 'gray')) for state in states
            ],
            'TERMINAL': frozenset(terminal),
            'UNSUCCESSFUL': frozenset(terminal) - {'succeeded', 'skipped', 'drifted'},
        },
    )


RunStateChoices = run_state_choices(run_states.STATES, run_states.TERMINAL)


class RunCauseChoices(ChoiceSet):
    CHANGE = 'change'
    SWEEP = 'sweep'
    MANUAL = 'manual'
    RETRY = 'retry'
    RESUME = 'resume'
    DRIFT_CHECK = 'drift_check'
    DRIFT = 'drift'

    CHOICES = [
        (CHANGE, 'Change'),
        (SWEEP, 'Sweep'),
        (MANUAL, 'Manual'),
        (RETRY, 'Retry'),
        (RESUME, 'Resume'),
        (DRIFT_CHECK, 'Drift check'),
        (DRIFT, 'Drift remediation'),
    ]


class RunModeChoices(ChoiceSet):
    """How a run launches its template (docs/decisions/0054): apply changes the target; check runs the
    playbook in check mode, changes nothing and reports drift. A check run never moves the root's last
    reconciled hash."""

    APPLY = 'apply'
    CHECK = 'check'

    CHOICES = [(APPLY, 'Apply', 'blue'), (CHECK, 'Check', 'cyan')]


class CauseEventChoices(ChoiceSet):
    CREATED = 'created'
    UPDATED = 'updated'
    DELETED = 'deleted'

    CHOICES = [(CREATED, 'Created'), (UPDATED, 'Updated'), (DELETED, 'Deleted')]


class AwxJobTypeChoices(ChoiceSet):
    JOB = 'job'
    WORKFLOW = 'workflow'

    CHOICES = [(JOB, 'Job'), (WORKFLOW, 'Workflow job')]


# outcome_class of a check-mode run that found the target differing from the snapshot.
OUTCOME_DRIFT = 'drift'


class Root(NetBoxModel):
    kind = models.CharField(max_length=50, db_index=True)
    anchor_type = models.ForeignKey(to=ContentType, on_delete=models.PROTECT, related_name='+')
    anchor_id = models.PositiveBigIntegerField()
    anchor = GenericForeignKey(ct_field='anchor_type', fk_field='anchor_id')
    key = models.CharField(max_length=100, unique=True)

    frozen = models.BooleanField(default=False, db_index=True)
    frozen_reason = models.CharField(max_length=500, blank=True)

    # sha256 of the current snapshot, maintained on member changes (docs/decisions/0021, 0043). hash_dirty
    # (the API's `hash_stale`) is set in the same transaction as the change, with hash_stale_since (the
    # first mark since the hash was last stored); the hash is recomputed in the background (hashes.py,
    # `netbox unicop_hashes`), never in a request, and stored with hash_computed_at.
    current_hash = models.CharField(max_length=64, blank=True)
    hash_dirty = models.BooleanField(default=True)
    hash_generation = models.PositiveBigIntegerField(default=0)
    hash_stale_since = models.DateTimeField(null=True, blank=True)
    hash_computed_at = models.DateTimeField(null=True, blank=True)
    last_reconciled_hash = models.CharField(max_length=64, blank=True)
    last_run = models.ForeignKey(
        to='unicop.ReconciliationRun', on_delete=models.SET_NULL, null=True, blank=True, related_name='+'
    )
    # When a check run (mode check) of the root last ended: the drift scheduler's clock, kept here so a new
    # workers process does not check every root again at start (docs/decisions/0054).
    last_drift_check = models.DateTimeField(null=True, blank=True)

    # The lease. highest_token is the last token ever issued for this root: tokens only grow.
    lease_holder = models.CharField(max_length=200, blank=True)
    lease_token = models.PositiveBigIntegerField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    highest_token = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ('id',)
        constraints = [
            models.UniqueConstraint(
                fields=('anchor_type', 'anchor_id', 'kind'), name='unicop_root_anchor_kind'
            ),
        ]
        # The background recompute takes the oldest stale roots first (hashes.py): an index of them only.
        indexes = [
            models.Index(
                fields=('hash_stale_since', 'id'),
                condition=models.Q(hash_dirty=True),
                name='unicop_root_stale',
            ),
        ]

    def __str__(self):
        return self.key

    def get_absolute_url(self):
        return reverse('plugins:unicop:root', args=[self.pk])

    def lease_live(self, now=None):
        return bool(
            self.lease_token and self.lease_expires_at and self.lease_expires_at > (now or timezone.now())
        )

    @property
    def status(self):
        """Derived, never stored. Precedence: frozen, held (in a rollout wave not opened yet), awaiting
        approval, reconciling, failed, drifted, then in sync or pending."""
        if self.frozen:
            return RootStatusChoices.FROZEN
        if self.held:
            return RootStatusChoices.HELD
        run = self.last_run
        if run is not None and run.state == RunStateChoices.AWAITING_APPROVAL:
            return RootStatusChoices.AWAITING_APPROVAL
        if (run is not None and run.state not in RunStateChoices.TERMINAL) or self.lease_live():
            return RootStatusChoices.RECONCILING
        if run is not None and run.state in RunStateChoices.UNSUCCESSFUL:
            return RootStatusChoices.FAILED
        if run is not None and run.outcome_class == OUTCOME_DRIFT:
            return RootStatusChoices.DRIFTED
        if (
            self.last_reconciled_hash
            and self.last_reconciled_hash == self.current_hash
            and not self.hash_dirty
        ):
            return RootStatusChoices.IN_SYNC
        return RootStatusChoices.PENDING

    def get_status_color(self):
        return RootStatusChoices.colors.get(self.status)

    @property
    def held(self):
        """Whether a live rollout holds this root: from the listing's annotation (held_rollout_ids()) when
        the root came with it, else one query."""
        if 'held_rollout_id' in self.__dict__:
            return self.__dict__['held_rollout_id'] is not None
        return self.held_by is not None

    @property
    def held_by(self):
        """The live rollout (open or halted) holding this root's intent in a wave not opened yet, or None
        (docs/decisions/0061)."""
        member = (
            RolloutMember.objects.filter(
                root=self, state=RolloutMemberStateChoices.HELD, rollout__state__in=RolloutStateChoices.LIVE
            )
            .select_related('rollout')
            .first()
        )
        return member.rollout if member is not None else None


def held_rollout_ids():
    """Annotate a root queryset with it as `held_rollout_id` (the id of the live rollout holding each root,
    or None): a listing's `status` then costs no query per root."""
    return models.Subquery(
        RolloutMember.objects.filter(
            root=models.OuterRef('pk'),
            state=RolloutMemberStateChoices.HELD,
            rollout__state__in=RolloutStateChoices.LIVE,
        ).values('rollout__rollout_id')[:1]
    )


class ReconciliationRun(NetBoxModel):
    run_id = models.CharField(max_length=64, unique=True)
    root = models.ForeignKey(to=Root, on_delete=models.CASCADE, related_name='runs')
    snapshot_hash = models.CharField(max_length=64)
    fencing_token = models.PositiveBigIntegerField()
    cause = models.CharField(max_length=20, choices=RunCauseChoices)
    mode = models.CharField(
        max_length=10, choices=RunModeChoices, default=RunModeChoices.APPLY, db_default=RunModeChoices.APPLY
    )
    state = models.CharField(max_length=20, choices=RunStateChoices, default=RunStateChoices.QUEUED)
    awx_job_type = models.CharField(max_length=10, choices=AwxJobTypeChoices, blank=True)
    awx_job_id = models.PositiveBigIntegerField(null=True, blank=True)
    awx_job_url = models.URLField(max_length=500, blank=True)
    started = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    outcome_class = models.CharField(max_length=50, blank=True)
    summary = models.TextField(blank=True)
    log_lines = models.JSONField(default=list, blank=True)

    # The cause chain (docs/decisions/0039): the intent the run's job carried and the NetBox change it
    # came from — change ids and NetBox request ids as the bridge published them (unicop.changes), the
    # user who made the change, and what changed. Empty for a sweep, a manual reconcile or a run written
    # before 0002; a retry carries its failed run's chain. Database defaults keep older code writing.
    intent_id = models.CharField(max_length=36, blank=True, default='', db_default='')
    change_ids = models.JSONField(default=list, db_default=[], blank=True)
    request_ids = models.JSONField(default=list, db_default=[], blank=True)
    actor = models.CharField(max_length=150, blank=True, default='', db_default='')
    cause_event = models.CharField(
        max_length=10, choices=CauseEventChoices, blank=True, default='', db_default=''
    )
    cause_object_type = models.CharField(max_length=100, blank=True, default='', db_default='')
    cause_object_id = models.PositiveBigIntegerField(null=True, blank=True)

    # Blast radius (docs/decisions/0065, migration 0006): the digests of the members the run was launched
    # with, the diff against the baseline run when it went above the root's limit, and the UNICOP-side
    # decision on it ({decision, by, sub, reason, at}). Null: none.
    member_digests = models.JSONField(null=True, blank=True)
    blast_radius = models.JSONField(null=True, blank=True)
    gate_decision = models.JSONField(null=True, blank=True)

    # Post-run verification (docs/decisions/0066, migration 0007): the AWX job that verified the target after
    # the run's apply job (awx_job_id) succeeded. Recorded before anything waits on it, so a worker taking
    # the run over follows it and never launches the apply again. Null: none launched.
    verify_job_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ('-started', '-id')
        indexes = [models.Index(fields=('root', '-started'), name='unicop_run_root_started')]

    def __str__(self):
        return self.run_id

    def get_absolute_url(self):
        return reverse('plugins:unicop:reconciliationrun', args=[self.pk])

    def get_state_color(self):
        return RunStateChoices.colors.get(self.state)

    @property
    def terminal(self):
        return self.state in RunStateChoices.TERMINAL

    @property
    def runbook_url(self):
        """The runbook of the run's failure class (runbooks.json), or None."""
        return runbooks.runbook_url(self.outcome_class)

    @property
    def verify_job_url(self):
        """The AWX page of the run's verify job (docs/decisions/0066): the apply job's page with the verify
        job's id in its place (both are jobs of the same AWX), or None."""
        if not self.verify_job_id or self.awx_job_type != 'job' or not self.awx_job_url:
            return None
        apply_page = f'/playbook/{self.awx_job_id}/'
        if apply_page not in self.awx_job_url:
            return None
        return self.awx_job_url.replace(apply_page, f'/playbook/{self.verify_job_id}/', 1)


class RolloutStateChoices(ChoiceSet):
    """A rollout (docs/decisions/0061): open while its waves proceed, halted when a wave's failure rate
    went above the threshold (a person resumes or aborts), aborted (its held roots never launched), done
    (every wave opened and ended)."""

    OPEN = 'open'
    HALTED = 'halted'
    ABORTED = 'aborted'
    DONE = 'done'

    CHOICES = [
        (OPEN, 'Open', 'blue'),
        (HALTED, 'Halted', 'red'),
        (ABORTED, 'Aborted', 'orange'),
        (DONE, 'Done', 'green'),
    ]
    LIVE = (OPEN, HALTED)


class RolloutMemberStateChoices(ChoiceSet):
    """One root in a rollout: held (its wave not opened yet; the intent waits in `intent`), released (its
    wave opened, the intent was queued), then ended succeeded or failed with the run's id; aborted (the
    rollout was aborted while it was held: never launched)."""

    HELD = 'held'
    RELEASED = 'released'
    SUCCEEDED = 'succeeded'
    FAILED = 'failed'
    ABORTED = 'aborted'

    CHOICES = [
        (HELD, 'Held', 'yellow'),
        (RELEASED, 'Released', 'blue'),
        (SUCCEEDED, 'Succeeded', 'green'),
        (FAILED, 'Failed', 'red'),
        (ABORTED, 'Aborted', 'orange'),
    ]
    ENDED = (SUCCEEDED, FAILED, ABORTED)


class Rollout(NetBoxModel):
    """One NetBox request that touched more roots than UNICOP_ROLLOUT_MIN_ROOTS, proceeding in waves
    (docs/decisions/0061). rollout_id is the request id. plan is the wave setting it was cut by (e.g.
    '1,10%,rest'); waves holds each wave's size in roots, in order (e.g. [1, 2, 17]); current_wave indexes
    it (0-based), wave_started is when that wave opened. failure_threshold is the highest failure share
    (0..1) of a wave's ended runs that still opens the next one. The workers write progress with
    queryset.update() (like the lease); state changes by a person (resume, abort) go through save() so
    they are change-logged."""

    rollout_id = models.CharField(max_length=100, unique=True)
    state = models.CharField(max_length=10, choices=RolloutStateChoices, default=RolloutStateChoices.OPEN)
    plan = models.CharField(max_length=100, blank=True)
    waves = models.JSONField(default=list)
    current_wave = models.PositiveIntegerField(default=0)
    wave_started = models.DateTimeField(null=True, blank=True)
    failure_threshold = models.FloatField(default=0)
    roots_total = models.PositiveIntegerField(default=0)
    # The cause chain of the change (docs/decisions/0039): its change ids, the user and what changed.
    change_ids = models.JSONField(default=list, blank=True)
    actor = models.CharField(max_length=150, blank=True)
    # Why it halted, was resumed or aborted (the figures, or the person's reason), and by whom.
    reason = models.CharField(max_length=500, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    opened = models.DateTimeField(default=timezone.now)
    ended = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ('-opened', '-id')

    def __str__(self):
        return self.rollout_id

    def get_absolute_url(self):
        # Its NetBox page (rollout_pages.py, decision 0069). NetBox links every change-logged object (the
        # Change Log list and widget, search), so this must resolve (review-A #3).
        return reverse('plugins:unicop:rollout', kwargs={'pk': self.pk})

    def get_state_color(self):
        return RolloutStateChoices.colors.get(self.state)

    @property
    def counts(self):
        """Members per state, every state named (0 when none)."""
        found = dict(
            self.members.values_list('state').annotate(n=models.Count('id')).values_list('state', 'n')
        )
        return {state: found.get(state, 0) for state, _label, _color in RolloutMemberStateChoices.CHOICES}


class RolloutMember(models.Model):
    """One root of a rollout: its wave, where it stands, the intent held until its wave opens and the run
    it led to. Written by the workers on every wave, so not a NetBoxModel (no change log per member)."""

    rollout = models.ForeignKey(to=Rollout, on_delete=models.CASCADE, related_name='members')
    root = models.ForeignKey(to=Root, on_delete=models.CASCADE, related_name='rollout_members')
    wave = models.PositiveIntegerField()
    state = models.CharField(
        max_length=10, choices=RolloutMemberStateChoices, default=RolloutMemberStateChoices.HELD
    )
    intent = models.JSONField(default=dict, blank=True)
    # How many intents the held root's lease refused (leases.py: a newer change's, or another resolver's
    # ungated copy of the held one), for the record; the held intent stays, and the wave's release
    # reconciles the newest snapshot. The sweeper does not sweep held roots, so time alone adds nothing.
    superseded = models.PositiveIntegerField(default=0)
    run_id = models.CharField(max_length=64, blank=True)
    outcome_class = models.CharField(max_length=50, blank=True)
    updated = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ('rollout', 'wave', 'id')
        constraints = [
            models.UniqueConstraint(fields=('rollout', 'root'), name='unicop_rolloutmember_rollout_root'),
        ]
        indexes = [
            models.Index(fields=('root', 'state'), name='unicop_rolloutmember_root'),
        ]

    def __str__(self):
        return f'{self.rollout_id}:{self.root_id}'
