import json

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.contenttypes.models import ContentType
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from netbox.object_actions import BulkExport
from netbox.views import generic
from utilities.views import register_model_view

from . import filtersets, forms, tables
from .freeze import set_frozen
from .models import ReconciliationRun, Root, held_rollout_ids
from .roots import refresh_dirty, root_policy


@register_model_view(Root, 'list', path='', detail=False)
class RootListView(generic.ObjectListView):
    queryset = (
        Root.objects.select_related('last_run')
        .prefetch_related('anchor')
        .annotate(held_rollout_id=held_rollout_ids())
    )
    table = tables.RootTable
    filterset = filtersets.RootFilterSet
    filterset_form = forms.RootFilterForm
    actions = (BulkExport,)


@register_model_view(Root)
class RootView(generic.ObjectView):
    queryset = (
        Root.objects.select_related('last_run')
        .prefetch_related('anchor')
        .annotate(held_rollout_id=held_rollout_ids())
    )
    actions = ()

    def get_extra_context(self, request, instance):
        refresh_dirty([instance])
        # The root's timeline: its latest runs, most recent first, each with its cause and outcome.
        runs = tables.ReconciliationRunTable(
            instance.runs.all()[:10],
            exclude=tables.ROOT_TIMELINE_HIDDEN,
            sequence=(*tables.ROOT_TIMELINE_COLUMNS, '...'),
            orderable=False,
        )
        policy, policy_error = root_policy(instance)
        return {
            'runs_table': runs,
            'can_change': request.user.has_perm('unicop.change_root', instance),
            'policy': policy,
            'policy_error': policy_error,
            # Each key with where its value comes from: the kind, the root's override, or both (0068).
            'policy_rows': [
                (key, value, (policy.get('overridden') or {}).get(key))
                for key, value in (policy or {}).items()
                if key != 'overridden'
            ],
        }


class RootFreezeView(LoginRequiredMixin, View):
    """Freeze or unfreeze one root with a reason; needs the change permission on that root."""

    frozen = True

    def _root(self, request, pk):
        return get_object_or_404(Root.objects.restrict(request.user, 'change'), pk=pk)

    def get(self, request, pk):
        root = self._root(request, pk)
        return render(
            request,
            'unicop/root_freeze.html',
            {'object': root, 'form': forms.FreezeForm(), 'frozen': self.frozen},
        )

    def post(self, request, pk):
        root = self._root(request, pk)
        form = forms.FreezeForm(request.POST)
        if not form.is_valid():
            return render(
                request, 'unicop/root_freeze.html', {'object': root, 'form': form, 'frozen': self.frozen}
            )
        set_frozen(root, self.frozen, form.cleaned_data['reason'], request.user)
        messages.success(request, f'{root.key} {"frozen" if self.frozen else "unfrozen"}')
        return redirect(root.get_absolute_url())


@register_model_view(ReconciliationRun, 'list', path='', detail=False)
class ReconciliationRunListView(generic.ObjectListView):
    queryset = ReconciliationRun.objects.select_related('root')
    table = tables.ReconciliationRunTable
    filterset = filtersets.ReconciliationRunFilterSet
    filterset_form = forms.ReconciliationRunFilterForm
    actions = (BulkExport,)


@register_model_view(ReconciliationRun)
class ReconciliationRunView(generic.ObjectView):
    queryset = ReconciliationRun.objects.select_related('root')
    actions = ()

    def get_extra_context(self, request, instance):
        # The run's structured log; meta shown as compact JSON. The changed object, linked when it
        # still exists and the user may see it.
        return {
            'log_lines': [
                {**line, 'meta': json.dumps(line['meta'], sort_keys=True) if line.get('meta') else ''}
                for line in instance.log_lines
            ],
            'cause_object': cause_object(instance, request.user),
        }


def cause_object(run, user):
    """The NetBox object whose change caused `run`, or None (none recorded, deleted, or not visible)."""
    if not run.cause_object_type or run.cause_object_id is None:
        return None
    app_label, _, model = run.cause_object_type.partition('.')
    try:
        model_class = ContentType.objects.get_by_natural_key(app_label, model).model_class()
    except ContentType.DoesNotExist:
        return None
    if model_class is None:
        return None
    objects = model_class.objects
    if hasattr(objects, 'restrict'):
        objects = objects.restrict(user, 'view')
    return objects.filter(pk=run.cause_object_id).first()
