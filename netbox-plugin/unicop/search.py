"""NetBox's global search over the plugin's objects: roots only.

Run records are not indexed (docs/decisions/0045): NetBox queues a background job ("Search cache
update") on its RQ worker for every save of an indexed object, and a run is written three times or
more, so indexing runs cost three of the four RQ jobs a run queued. Runs are found on the runs page
instead (its search box: run id, summary, root key; ReconciliationRunFilterSet.search).
"""

from netbox.search import SearchIndex

from .models import Root


class RootIndex(SearchIndex):
    model = Root
    fields = (('key', 100), ('frozen_reason', 500))
    display_attrs = ('kind', 'frozen')


indexes = (RootIndex,)
