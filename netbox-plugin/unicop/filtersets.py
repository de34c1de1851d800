import django_filters
from django.db.models import Q
from netbox.filtersets import NetBoxModelFilterSet

from .models import ReconciliationRun, Root, RunCauseChoices, RunStateChoices


class RootFilterSet(NetBoxModelFilterSet):
    key = django_filters.CharFilter()
    kind = django_filters.CharFilter()
    frozen = django_filters.BooleanFilter()

    class Meta:
        model = Root
        fields = ('id', 'key', 'kind', 'frozen', 'anchor_id')

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(Q(key__icontains=value) | Q(frozen_reason__icontains=value))


class ReconciliationRunFilterSet(NetBoxModelFilterSet):
    root_id = django_filters.ModelMultipleChoiceFilter(queryset=Root.objects.all())
    root = django_filters.CharFilter(field_name='root__key')
    state = django_filters.MultipleChoiceFilter(choices=RunStateChoices)
    cause = django_filters.MultipleChoiceFilter(choices=RunCauseChoices)

    class Meta:
        model = ReconciliationRun
        fields = ('id', 'run_id', 'snapshot_hash', 'fencing_token', 'outcome_class', 'awx_job_id')

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(
            Q(run_id__icontains=value) | Q(summary__icontains=value) | Q(root__key__icontains=value)
        )
