"""NetBox's pages for gradual rollouts (docs/decisions/0061, 0069): the list of rollouts (state, wave,
counts, reason; filtered by state, searched by request id, actor or reason) and a rollout's page — its
waves (size, each member's state, which one is current), its members (root, wave, state, the run its end
came from, linked; how many intents the held root's lease parked) and why it halted or was decided.
People decide a halted rollout with `unicop rollout resume|abort <id>` (the admin API): the pages read,
they do not act. Table, filterset and form live here beside the views: one concept per file."""

import django_filters
import django_tables2 as tables
from django import forms
from django.db.models import Q
from netbox.filtersets import NetBoxModelFilterSet
from netbox.forms import NetBoxModelFilterSetForm
from netbox.object_actions import BulkExport
from netbox.tables import NetBoxTable, columns
from netbox.views import generic
from utilities.views import register_model_view

from .models import ReconciliationRun, Rollout, RolloutMemberStateChoices, RolloutStateChoices


class RolloutFilterSet(NetBoxModelFilterSet):
    state = django_filters.MultipleChoiceFilter(choices=RolloutStateChoices)
    rollout_id = django_filters.CharFilter()

    class Meta:
        model = Rollout
        fields = ('id', 'rollout_id', 'state', 'actor')

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(
            Q(rollout_id__icontains=value) | Q(actor__icontains=value) | Q(reason__icontains=value)
        )


class RolloutFilterForm(NetBoxModelFilterSetForm):
    model = Rollout
    state = forms.MultipleChoiceField(choices=RolloutStateChoices, required=False)


class RolloutTable(NetBoxTable):
    # No edit/delete: a rollout is opened by the resolver's gate and decided through the admin API.
    actions = columns.ActionsColumn(actions=())
    rollout_id = tables.Column(linkify=True, verbose_name='Rollout (request id)')
    state = columns.ChoiceFieldColumn()
    wave = tables.TemplateColumn(
        template_code='{{ record.current_wave|add:1 }} of {{ record.waves|length }}', orderable=False
    )
    counts = tables.Column(orderable=False, empty_values=(), verbose_name='Members')

    def render_counts(self, record):
        return ', '.join(f'{state} {n}' for state, n in record.counts.items() if n) or '—'

    class Meta(NetBoxTable.Meta):
        model = Rollout
        fields = (
            'pk',
            'id',
            'rollout_id',
            'state',
            'wave',
            'plan',
            'roots_total',
            'counts',
            'failure_threshold',
            'actor',
            'reason',
            'decided_by',
            'opened',
            'ended',
        )
        default_columns = (
            'rollout_id',
            'state',
            'wave',
            'roots_total',
            'counts',
            'actor',
            'reason',
            'opened',
        )


@register_model_view(Rollout, 'list', path='', detail=False)
class RolloutListView(generic.ObjectListView):
    queryset = Rollout.objects.all()
    table = RolloutTable
    filterset = RolloutFilterSet
    filterset_form = RolloutFilterForm
    actions = (BulkExport,)


def wave_rows(rollout, members):
    """One row per wave: its number, size, members per state and whether it is done, current or waiting."""
    rows = []
    for index, size in enumerate(rollout.waves):
        states = {}
        for member in members:
            if member.wave == index:
                states[member.state] = states.get(member.state, 0) + 1
        if index < rollout.current_wave:
            where = 'ended'
        elif index == rollout.current_wave:
            where = 'current' if rollout.state in RolloutStateChoices.LIVE else rollout.state
        else:
            where = 'aborted' if rollout.state == RolloutStateChoices.ABORTED else 'waiting'
        rows.append({'number': index + 1, 'size': size, 'states': sorted(states.items()), 'where': where})
    return rows


@register_model_view(Rollout)
class RolloutView(generic.ObjectView):
    queryset = Rollout.objects.all()
    actions = ()

    def get_extra_context(self, request, instance):
        members = list(instance.members.select_related('root').order_by('wave', 'root__key'))
        # The runs the members' ends came from, in one query, linked when the user may see them.
        run_ids = [m.run_id for m in members if m.run_id]
        runs = {
            r.run_id: r
            for r in ReconciliationRun.objects.restrict(request.user, 'view').filter(run_id__in=run_ids)
        }
        colors = RolloutMemberStateChoices.colors
        return {
            'waves': wave_rows(instance, members),
            'members': [
                {'member': m, 'run': runs.get(m.run_id), 'color': colors.get(m.state)} for m in members
            ],
        }
