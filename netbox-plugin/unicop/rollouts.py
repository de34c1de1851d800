"""Gradual rollout (docs/decisions/0061): the waves of one NetBox request that touched many roots.

The resolver hands over each request's intents; the plugin cuts the waves, keeps the intents and decides,
each under the rollout's row lock, so two outcomes arriving together cannot both open the next wave:
- gate(): the resolver asks, for the intents of one request, which are held. The first time, the
  request's roots are read from NetBox's change records of that request (all of them: a bulk edit's
  changes reach the resolver one by one, in any batches); more than the minimum open the rollout, every
  root a member, wave 1 released. Each intent is kept on its member; a held one is not published.
  Repeating it (a replayed change) changes nothing and answers the same.
- record_outcome(): a run of a released member ended; when its wave has no released member left, the
  wave's failure share decides: above the threshold the rollout halts, else the next wave is released
  (its intents returned for the caller to queue), or, after the last wave, the rollout is done. The
  same end reported again answers what it decided again (_replayed), so a lost answer loses nothing.
- resume() (halted: the next wave is released; open: the current wave's intents again, for a queueing
  lost in a crash) and abort() (the held members never launch), by a person.
A held root refuses the lease (leases.py), so no other intent launches it before its wave.
"""

import uuid

from core.models import ObjectChange
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from .models import (
    Rollout,
    RolloutMember,
    RolloutMemberStateChoices,
    RolloutStateChoices,
    Root,
    RunStateChoices,
)
from .roots import resolve_changes

M = RolloutMemberStateChoices


class RolloutRefused(Exception):
    """409: the rollout's state does not allow the action (e.g. resume of a done rollout)."""

    def __init__(self, detail, rollout):
        super().__init__(detail)
        self.detail = detail
        self.state = rollout.state

    def body(self):
        return {'detail': self.detail, 'state': self.state}


def summary(rollout):
    """The rollout as the API answers it (counts per member state, held root keys)."""
    return {
        'id': rollout.pk,
        'rollout_id': rollout.rollout_id,
        'state': rollout.state,
        'plan': rollout.plan,
        'waves': rollout.waves,
        'current_wave': rollout.current_wave,
        'wave_started': rollout.wave_started.isoformat() if rollout.wave_started else None,
        'failure_threshold': rollout.failure_threshold,
        'roots_total': rollout.roots_total,
        'counts': rollout.counts,
        'change_ids': rollout.change_ids,
        'actor': rollout.actor,
        'reason': rollout.reason,
        'decided_by': rollout.decided_by,
        'opened': rollout.opened.isoformat(),
        'ended': rollout.ended.isoformat() if rollout.ended else None,
        'members': [
            {
                'root_key': m.root.key,
                'wave': m.wave,
                'state': m.state,
                'run_id': m.run_id,
                'outcome_class': m.outcome_class,
                'parked': m.superseded,
            }
            for m in rollout.members.select_related('root').order_by('wave', 'id')
        ],
    }


def _intents(members):
    """What released members ask to queue: each root and the intent held for it ({} when the root's own
    change never reached the resolver: the caller builds one)."""
    return [{'root_key': m.root.key, 'intent': m.intent} for m in members]


_EVENTS = {'create': 'created', 'update': 'updated', 'delete': 'deleted'}


def request_root_keys(request_id):
    """Every root a NetBox request touched, from its change records (one per object it changed, all
    committed before NetBox sends the request's webhooks), resolved as the resolver resolves changes."""
    try:
        request_uuid = uuid.UUID(str(request_id))
    except ValueError:
        return []  # not a NetBox request id: no change records to read
    changes = []
    for oc in ObjectChange.objects.filter(request_id=request_uuid).select_related('changed_object_type'):
        ct = oc.changed_object_type
        changes.append(
            {
                'object_type': f'{ct.app_label}.{ct.model}',
                'object_id': oc.changed_object_id,
                'event': _EVENTS.get(oc.action, 'updated'),
                'data': oc.postchange_data or oc.prechange_data,
                'prechange': oc.prechange_data,
                'postchange': oc.postchange_data,
            }
        )
    keys = set()
    for found in resolve_changes(changes) if changes else []:
        keys.update(found)
    return sorted(keys)


def plan_error(plan):
    """What is wrong with a wave plan, or None: each wave a number of roots (at least 1), a share of all of
    them like 10% (at least one root), or `rest`, last only. The workers' UNICOP_ROLLOUT_WAVES check
    (core/config.ts wavePlanError) refuses by the same rule."""
    parts = [p.strip() for p in plan.split(',')]
    for i, part in enumerate(parts):
        if part == 'rest':
            if i != len(parts) - 1:
                return f'waves {plan!r}: rest must be the last wave'
            continue
        number = part[:-1] if part.endswith('%') else part
        if not (number.isascii() and number.isdigit()) or (number == part and int(number) < 1):
            return f'waves {plan!r}: {part!r} is no wave size'
    return None


def cut_waves(plan, roots):
    """Wave sizes for `roots` roots from a plan like '1,10%,rest' (a number of roots; a share of all of
    them, at least one; or the rest, last only). Roots past the last wave join it."""
    if error := plan_error(plan):
        raise ValueError(error)
    sizes, left = [], roots
    for part in (p.strip() for p in plan.split(',')):
        if left == 0:
            break
        if part == 'rest':
            size = left
        elif part.endswith('%'):
            size = max(1, -(-roots * int(part[:-1]) // 100))
        else:
            size = int(part)
        size = min(size, left)
        sizes.append(size)
        left -= size
    if left and sizes:
        sizes[-1] += left
    return sizes


def gate(request_id, plan, threshold, min_roots, change_ids, actor, intents):
    """The resolver's question for the intents of one request (intents: [(root_key, intent)]): which are
    held? The first time, the request's roots are read from its change records; more than min_roots of
    them open a rollout (every root a member, wave 1 released). Then each intent is kept on its member
    (if it has none yet); a held member's intent is not to be published. Answers (rollout or None,
    created, held root keys)."""
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().filter(rollout_id=request_id).first()
        created = False
        if rollout is None:
            keys = sorted(set(request_root_keys(request_id)) | {k for k, _ in intents})
            # Only the roots that exist are members: a root whose anchor the request deleted has no row to
            # hold; the minimum counts these and the waves are cut over them, so no wave starts empty
            # (review-A #6).
            keys = sorted(Root.objects.filter(key__in=keys).values_list('key', flat=True))
            busy = _enrolled(keys)  # an older live rollout's own
            keys = [k for k in keys if k not in busy]
            if len(keys) <= min_roots:
                return None, False, []
            rollout = _create(
                request_id, plan, cut_waves(plan, len(keys)), threshold, change_ids, actor, keys
            )
            created = True
        members = {m.root.key: m for m in rollout.members.select_related('root')}
        held = set()
        for key, intent in intents:
            member = members.get(key)
            if member is None:
                continue
            if not member.intent:
                RolloutMember.objects.filter(pk=member.pk).update(intent=intent)
                member.intent = intent
            if member.state == M.HELD:
                held.add(key)
        new = [c for c in change_ids if c not in rollout.change_ids]
        if new and not created:
            rollout.change_ids = rollout.change_ids + new
            Rollout.objects.filter(pk=rollout.pk).update(change_ids=rollout.change_ids)
        return rollout, created, sorted(held)


def live_roots():
    """The roots a run's end may be credited to now (record_outcomes: a released member of a live rollout)
    and the time up to which that list is complete, for the rollout worker (docs/decisions/0069): a run
    that started before `at` and whose root is not listed is credited to no rollout, so its end need not
    be reported. A member released at `updated` <= `at` is listed: its release committed before the list
    was read. `updated` is set inside the releasing transaction, so `at` is pulled back to the start of
    the oldest transaction still open on this database (PostgreSQL's pg_stat_activity; NetBox writes
    through one role, whose sessions it shows): one that released a member and has not committed began
    before that member's `updated`. Answers (at, sorted root keys)."""
    at = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT min(xact_start) FROM pg_stat_activity '
            'WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL'
        )
        oldest = cursor.fetchone()[0]
    if oldest is not None and oldest < at:
        at = oldest
    keys = (
        RolloutMember.objects.filter(state=M.RELEASED, rollout__state__in=RolloutStateChoices.LIVE)
        .values_list('root__key', flat=True)
        .distinct()
    )
    return at, sorted(keys)


def live_counts():
    """Live rollouts per state and their members per state (held: waiting for their wave; released: run
    not ended), every state named: the workers' unicop_rollouts and unicop_rollout_roots gauges."""
    rollouts = dict.fromkeys(RolloutStateChoices.LIVE, 0)
    for row in (
        Rollout.objects.filter(state__in=RolloutStateChoices.LIVE).values('state').annotate(n=Count('pk'))
    ):
        rollouts[row['state']] = row['n']
    members = dict.fromkeys((M.HELD, M.RELEASED), 0)
    live_members = RolloutMember.objects.filter(
        state__in=(M.HELD, M.RELEASED), rollout__state__in=RolloutStateChoices.LIVE
    )
    for row in live_members.values('state').annotate(n=Count('pk')):
        members[row['state']] = row['n']
    return {'rollouts': rollouts, 'members': members}


def _enrolled(keys):
    """The roots among `keys` a live rollout holds or has released (its run not ended): a newer rollout
    does not enrol them. Its intent for them is published (not held): it is parked at the lease while the
    older rollout holds the root, or runs once that one released it; the older rollout's release reconciles
    the newest snapshot anyway (guarantee 3). Two live rollouts never wait on each other's members."""
    return set(
        RolloutMember.objects.filter(
            root__key__in=keys, state__in=(M.HELD, M.RELEASED), rollout__state__in=RolloutStateChoices.LIVE
        ).values_list('root__key', flat=True)
    )


def _create(rollout_id, plan, waves, threshold, change_ids, actor, keys):
    roots = {r.key: r for r in Root.objects.filter(key__in=keys)}
    now = timezone.now()
    rollout = Rollout.objects.create(
        rollout_id=rollout_id,
        plan=plan,
        waves=waves,
        failure_threshold=threshold,
        roots_total=len(keys),
        change_ids=change_ids,
        actor=actor,
        opened=now,
        wave_started=now,
    )
    bounds = []
    for size in waves:
        bounds.append((bounds[-1] if bounds else 0) + size)
    members = []
    for i, key in enumerate(keys):
        root = roots.get(key)
        if root is None:
            continue  # gone since the change: nothing to hold
        wave = next(w for w, end in enumerate(bounds) if i < end)
        state = M.RELEASED if wave == 0 else M.HELD
        members.append(RolloutMember(rollout=rollout, root=root, wave=wave, state=state, updated=now))
    RolloutMember.objects.bulk_create(members)
    return rollout


def _release_next(rollout, now):
    """Opens the wave after the current one: its members released; returns their intents ([] when the
    current wave was the last: the rollout is done)."""
    nxt = rollout.current_wave + 1
    # A wave left with no held member (its roots deleted meanwhile: members go with them) has nothing to
    # release and no end to wait for: skipped (review-A #6).
    while nxt < len(rollout.waves) and not rollout.members.filter(wave=nxt, state=M.HELD).exists():
        nxt += 1
    members = list(rollout.members.filter(wave=nxt, state=M.HELD).select_related('root'))
    if nxt >= len(rollout.waves):
        rollout.state = RolloutStateChoices.DONE
        rollout.ended = now
        return None, []
    rollout.current_wave = nxt
    rollout.wave_started = now
    RolloutMember.objects.filter(pk__in=[m.pk for m in members]).update(state=M.RELEASED, updated=now)
    return 'wave_started', _intents(members)


def record_outcome(root_key, run_id, state, outcome_class, started_at):
    """A run of root_key ended. Answers (rollout or None, transition or None, intents to queue): the first
    of record_outcomes' steps."""
    steps = record_outcomes(root_key, run_id, state, outcome_class, started_at)
    return steps[0] if steps else (None, None, [])


def record_outcomes(root_key, run_id, state, outcome_class, started_at):
    """A run of root_key ended: it ends every released member of the root in a live rollout, released no
    later than the run started (a newer rollout enrols no root an older live one holds or has released,
    but one opened before that rule may share it: each is owed the end), each rollout locked in pk order.
    Answers one step (rollout, transition or None, intents to queue) per rollout credited; none found, an
    end already recorded answers what it decided (_replayed)."""
    with transaction.atomic():
        members = list(
            RolloutMember.objects.filter(
                root__key=root_key,
                state=M.RELEASED,
                rollout__state__in=RolloutStateChoices.LIVE,
                updated__lte=started_at,
            ).order_by('rollout_id', 'pk')
        )
        if not members:
            return _replayed(root_key, run_id)
        failed = state in RunStateChoices.UNSUCCESSFUL
        steps = []
        for member in members:
            rollout = Rollout.objects.select_for_update().get(pk=member.rollout_id)
            ended = RolloutMember.objects.filter(pk=member.pk, state=M.RELEASED).update(
                state=M.FAILED if failed else M.SUCCEEDED, run_id=run_id, outcome_class=outcome_class or ''
            )
            if ended:  # else a report of this end at the same time took it: answered as a replay below
                steps.append(_close_wave(rollout))
        return steps or _replayed(root_key, run_id)


def _close_wave(rollout):
    """After an end in the rollout's current wave (the rollout locked): when the wave has no released
    member left, its failure share halts the rollout or opens the next wave. Answers the step."""
    wave = rollout.members.filter(wave=rollout.current_wave)
    if rollout.state != RolloutStateChoices.OPEN or wave.filter(state=M.RELEASED).exists():
        return rollout, None, []
    ended = wave.filter(state__in=(M.SUCCEEDED, M.FAILED)).count()
    failures = wave.filter(state=M.FAILED).count()
    share = failures / ended if ended else 0.0
    now = timezone.now()
    figures = (
        f'wave {rollout.current_wave + 1} of {len(rollout.waves)}: {failures} of {ended} runs failed '
        f'({share:.0%}, threshold {rollout.failure_threshold:.0%})'
    )
    if share > rollout.failure_threshold and rollout.current_wave + 1 < len(rollout.waves):
        rollout.state = RolloutStateChoices.HALTED
        rollout.reason = f'halted: {figures}'
        transition, intents = 'halted', []
    else:
        rollout.reason = figures
        transition, intents = _release_next(rollout, now)
        transition = transition or 'done'
    Rollout.objects.filter(pk=rollout.pk).update(
        state=rollout.state,
        reason=rollout.reason[:500],
        current_wave=rollout.current_wave,
        wave_started=rollout.wave_started,
        ended=rollout.ended,
    )
    return rollout, transition, intents


def _replayed(root_key, run_id):
    """A run's end reported again (the rollout worker's batch came again after a failed append, or the
    request was resent): what it decided, answered again per rollout it was credited to, so nothing it
    released is lost. When it was the end that opened the next wave: that wave's released intents (their
    ids are derived, so queueing them again adds nothing); when it halted the rollout or ended it: that
    transition again; else the rollout, nothing to do."""
    steps = []
    members = RolloutMember.objects.filter(
        root__key=root_key, run_id=run_id, state__in=(M.SUCCEEDED, M.FAILED)
    ).order_by('rollout_id', 'pk')
    for member in members:
        rollout = Rollout.objects.select_for_update().get(pk=member.rollout_id)
        if rollout.state == RolloutStateChoices.OPEN and member.wave == rollout.current_wave - 1:
            released = rollout.members.filter(wave=rollout.current_wave, state=M.RELEASED).select_related(
                'root'
            )
            steps.append((rollout, 'wave_started', _intents(released)))
        elif member.wave == rollout.current_wave and rollout.state == RolloutStateChoices.HALTED:
            steps.append((rollout, 'halted', []))
        elif member.wave == rollout.current_wave and rollout.state == RolloutStateChoices.DONE:
            steps.append((rollout, 'done', []))
        else:
            steps.append((rollout, None, []))
    return steps


def _locked(rollout_id):
    rollout = Rollout.objects.select_for_update().filter(rollout_id=rollout_id).first()
    if rollout is None:
        raise Rollout.DoesNotExist(f'no rollout {rollout_id}')
    return rollout


def resume(rollout_id, by, reason):
    """Answers (rollout, transition, intents to queue). Halted: the next wave opens. Open: the current
    wave's released intents again (queueing them twice adds nothing: their ids are taken)."""
    with transaction.atomic():
        rollout = _locked(rollout_id)
        now = timezone.now()
        if rollout.state == RolloutStateChoices.OPEN:
            released = rollout.members.filter(wave=rollout.current_wave, state=M.RELEASED).select_related(
                'root'
            )
            return rollout, None, _intents(released)
        if rollout.state != RolloutStateChoices.HALTED:
            raise RolloutRefused(f'rollout {rollout_id} is {rollout.state}: nothing to resume', rollout)
        rollout.state = RolloutStateChoices.OPEN
        transition, intents = _release_next(rollout, now)
        rollout.decided_by = by
        rollout.reason = (f'resumed by {by}' + (f': {reason}' if reason else ''))[:500]
        rollout.save()
        return rollout, transition or 'done', intents


def abort(rollout_id, by, reason):
    """Answers (rollout, the root keys that will never launch for it)."""
    with transaction.atomic():
        rollout = _locked(rollout_id)
        if rollout.state not in RolloutStateChoices.LIVE:
            raise RolloutRefused(f'rollout {rollout_id} is {rollout.state}: nothing to abort', rollout)
        held = rollout.members.filter(state=M.HELD)
        keys = sorted(held.values_list('root__key', flat=True))
        held.update(state=M.ABORTED, updated=timezone.now())
        rollout.state = RolloutStateChoices.ABORTED
        rollout.ended = timezone.now()
        rollout.decided_by = by
        rollout.reason = (f'aborted by {by}' + (f': {reason}' if reason else ''))[:500]
        rollout.save()
        return rollout, keys
