import json

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View
from netbox.object_actions import BulkExport
from netbox.views import generic
from utilities.views import register_model_view

from . import filtersets, forms, tables
from .freeze import set_frozen
from .models import ReconciliationRun, Root
from .roots import refresh_dirty


@register_model_view(Root, 'list', path='', detail=False)
class RootListView(generic.ObjectListView):
    queryset = Root.objects.select_related('last_run').prefetch_related('anchor')
    table = tables.RootTable
    filterset = filtersets.RootFilterSet
    filterset_form = forms.RootFilterForm
    actions = (BulkExport,)


@register_model_view(Root)
class RootView(generic.ObjectView):
    queryset = Root.objects.select_related('last_run').prefetch_related('anchor')
    actions = ()

    def get_extra_context(self, request, instance):
        refresh_dirty([instance])
        runs = tables.ReconciliationRunTable(instance.runs.all()[:10], exclude=('root',), orderable=False)
        return {
            'runs_table': runs,
            'can_change': request.user.has_perm('unicop.change_root', instance),
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
        # The run's structured log as its timeline; meta shown as compact JSON.
        return {
            'log_lines': [
                {**line, 'meta': json.dumps(line['meta'], sort_keys=True) if line.get('meta') else ''}
                for line in instance.log_lines
            ]
        }
