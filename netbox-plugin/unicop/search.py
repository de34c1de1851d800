from netbox.search import SearchIndex

from .models import ReconciliationRun, Root


class RootIndex(SearchIndex):
    model = Root
    fields = (('key', 100), ('frozen_reason', 500))
    display_attrs = ('kind', 'frozen')


class ReconciliationRunIndex(SearchIndex):
    model = ReconciliationRun
    fields = (('run_id', 100), ('summary', 2000))
    display_attrs = ('root', 'state', 'outcome_class')


indexes = (RootIndex, ReconciliationRunIndex)
