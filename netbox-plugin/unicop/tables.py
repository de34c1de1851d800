import django_tables2 as tables
from netbox.tables import NetBoxTable, columns

from .models import ReconciliationRun, Root


class RootTable(NetBoxTable):
    # No edit/delete views: roots follow their anchors, runs are history written through the API.
    actions = columns.ActionsColumn(actions=())
    key = tables.Column(linkify=True)
    anchor = tables.Column(linkify=True, orderable=False)
    status = tables.TemplateColumn(
        template_code='<span class="badge text-bg-{{ record.get_status_color }}">{{ record.status }}</span>',
        orderable=False,
    )
    frozen = columns.BooleanColumn()
    last_run = tables.Column(linkify=True)
    lease_holder = tables.Column(verbose_name='Lease holder')

    def render_lease_holder(self, value, record):
        # Only a live lease has a holder; an expired one is free to take.
        return value if record.lease_live() else '—'

    current_hash = tables.TemplateColumn(template_code='<code>{{ value|slice:":12" }}</code>')
    last_reconciled_hash = tables.TemplateColumn(template_code='<code>{{ value|slice:":12" }}</code>')

    class Meta(NetBoxTable.Meta):
        model = Root
        fields = (
            'pk',
            'id',
            'key',
            'kind',
            'anchor',
            'status',
            'frozen',
            'frozen_reason',
            'lease_holder',
            'highest_token',
            'current_hash',
            'last_reconciled_hash',
            'last_run',
            'created',
            'last_updated',
        )
        default_columns = ('key', 'kind', 'anchor', 'status', 'frozen', 'lease_holder', 'last_run')


class ReconciliationRunTable(NetBoxTable):
    actions = columns.ActionsColumn(actions=())
    run_id = tables.Column(linkify=True)
    root = tables.Column(linkify=True)
    state = columns.ChoiceFieldColumn()
    cause = columns.ChoiceFieldColumn()
    snapshot_hash = tables.TemplateColumn(template_code='<code>{{ value|slice:":12" }}</code>')
    awx_job_url = tables.TemplateColumn(
        verbose_name='AWX job',
        template_code=(
            '{% if value %}<a href="{{ value }}">'
            '{{ record.awx_job_type }} {{ record.awx_job_id }}</a>{% endif %}'
        ),
    )

    cause_object_type = tables.TemplateColumn(
        verbose_name='Changed object',
        template_code=(
            '{% if value %}{{ record.cause_event }} <code>{{ value }}:{{ record.cause_object_id }}</code>'
            '{% endif %}'
        ),
    )
    outcome_class = tables.TemplateColumn(
        template_code="{% include 'unicop/inc/outcome_class.html' with run=record %}",
    )

    class Meta(NetBoxTable.Meta):
        model = ReconciliationRun
        fields = (
            'pk',
            'id',
            'run_id',
            'root',
            'state',
            'cause',
            'fencing_token',
            'snapshot_hash',
            'awx_job_url',
            'outcome_class',
            'summary',
            'actor',
            'cause_object_type',
            'intent_id',
            'started',
            'finished',
        )
        default_columns = (
            'run_id',
            'root',
            'state',
            'cause',
            'fencing_token',
            'snapshot_hash',
            'awx_job_url',
            'outcome_class',
            'started',
            'finished',
        )


# The root page's timeline of runs: when, what caused it, who, and how it ended.
ROOT_TIMELINE_COLUMNS = (
    'started',
    'run_id',
    'cause',
    'actor',
    'cause_object_type',
    'state',
    'awx_job_url',
    'outcome_class',
    'finished',
)
ROOT_TIMELINE_HIDDEN = tuple(
    name for name in ReconciliationRunTable.Meta.fields if name not in ('pk', *ROOT_TIMELINE_COLUMNS)
)
