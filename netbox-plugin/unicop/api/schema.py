"""What drf-spectacular cannot infer about the plugin's API, declared once so that NetBox's
/api/schema/ describes it truly (openapi/plugin.yaml is exported from there, and the workers' types
are generated from that: docs/decisions/0012-http-clients-and-http-faults.md).

Without these declarations the schema says that a run's `state` or `summary` may be missing from
an answer (drf-spectacular requires only read-only and required fields in responses, while DRF
writes every field), that the lease, freeze and snapshot actions take and
return a Root, that a root's `anchor`, `lease`, `awx_template` and `policy` are strings (method
fields), and nothing about the 409 answers. Imported by api/urls.py, before the schema is built.
"""

from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers as s

from . import serializers, views


class RootRefFieldExtension(OpenApiSerializerFieldExtension):
    """A run's root: written as an id or a key, read as {id, key} (serializers.RootRefField)."""

    target_class = 'unicop.api.serializers.RootRefField'

    def map_serializer_field(self, auto_schema, direction):
        if direction == 'request':
            return {
                'oneOf': [{'type': 'integer'}, {'type': 'string'}],
                'description': 'A root id (42) or key ("prefix/42").',
            }
        return {
            'type': 'object',
            'properties': {'id': {'type': 'integer'}, 'key': {'type': 'string'}},
            'required': ['id', 'key'],
        }


class EveryFieldAnswered(OpenApiSerializerExtension):
    """In a response every field of these serializers is present (the request side is unchanged)."""

    target_class = 'unicop.api.serializers.ReconciliationRunSerializer'

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction == 'response':
            schema['required'] = sorted(schema['properties'])
        return schema


class EveryRootFieldAnswered(EveryFieldAnswered):
    target_class = 'unicop.api.serializers.RootSerializer'


class EveryLastRunFieldAnswered(EveryFieldAnswered):
    target_class = 'unicop.api.serializers.LastRunSerializer'


Snapshot = inline_serializer(
    'RootSnapshot',
    {
        'root': s.CharField(),
        'hash': s.CharField(),
        # The root's hash_generation, read before the snapshot (docs/decisions/0067).
        'hash_generation': s.IntegerField(),
        'snapshot': s.JSONField(),
    },
)

CurrentHash = inline_serializer(
    'RootCurrentHash',
    {
        'root': s.CharField(),
        'hash': s.CharField(),
        'hash_generation': s.IntegerField(),
        # False while NetBox rewrites custom field data in a background job (decision 0067).
        'settled': s.BooleanField(),
    },
)

Lease = inline_serializer(
    'Lease',
    {
        'token': s.IntegerField(),
        'holder': s.CharField(),
        'expires_at': s.DateTimeField(),
        # Only when the lease was asked for with `context: true` (docs/decisions/0045).
        'last_reconciled_hash': s.CharField(required=False),
        'last_run': serializers.LastRunSerializer(required=False, allow_null=True),
        'open_runs': serializers.ReconciliationRunSerializer(many=True, required=False),
        'snapshot': type(Snapshot)(required=False),
    },
)

LeaseConflict = inline_serializer(
    'LeaseConflict',
    {
        'detail': s.CharField(),
        'holder': s.CharField(allow_null=True),
        'expires_at': s.DateTimeField(allow_null=True),
        'highest_token': s.IntegerField(),
        'frozen': s.BooleanField(),
    },
)

RunStateConflict = inline_serializer(
    'RunStateConflict',
    {
        'detail': s.CharField(),
        'state': s.CharField(allow_null=True),  # null when a create is refused
        'allowed': s.ListField(child=s.CharField()),
    },
)

RunWriteConflict = PolymorphicProxySerializer(
    component_name='RunWriteConflict',
    serializers=[LeaseConflict, RunStateConflict],
    resource_type_field_name=None,
)

lease_conflict = OpenApiResponse(
    LeaseConflict, description='Another holder has a live lease, the root is frozen, or the token is stale.'
)

extend_schema_view(
    # Keyset pagination (pagination.py) declares no query parameters of its own.
    list=extend_schema(
        parameters=[
            OpenApiParameter('limit', int, description='Roots per page, 1 to 1000 (default 100).'),
            OpenApiParameter('cursor', str, description="The previous page's next_cursor."),
        ]
    ),
    snapshot=extend_schema(responses={200: Snapshot}),
    current_hash=extend_schema(responses={200: CurrentHash}),
    lease=extend_schema(
        request=serializers.LeaseAcquireSerializer, responses={201: Lease, 409: lease_conflict}
    ),
    lease_renew=extend_schema(
        request=serializers.LeaseRenewSerializer, responses={200: Lease, 409: lease_conflict}
    ),
    lease_release=extend_schema(
        request=serializers.LeaseReleaseSerializer, responses={204: None, 409: lease_conflict}
    ),
    freeze=extend_schema(request=serializers.FreezeSerializer, responses={200: serializers.RootSerializer}),
    unfreeze=extend_schema(
        request=serializers.UnfreezeSerializer, responses={200: serializers.RootSerializer}
    ),
)(views.RootViewSet)

run_conflict = OpenApiResponse(
    RunWriteConflict, description='Refused by the fence (LeaseConflict) or by the run state machine.'
)
extend_schema_view(
    create=extend_schema(responses={201: serializers.ReconciliationRunSerializer, 409: run_conflict}),
    partial_update=extend_schema(responses={200: serializers.ReconciliationRunSerializer, 409: run_conflict}),
    write=extend_schema(
        request=serializers.RunWriteSerializer,
        responses={200: serializers.RunWrittenSerializer, 409: run_conflict},
    ),
)(views.ReconciliationRunViewSet)

extend_schema_field(
    inline_serializer(
        'RootAnchor',
        {
            'object_type': s.CharField(),
            'id': s.IntegerField(),
            'display': s.CharField(allow_null=True),
        },
    )
)(serializers.RootSerializer.get_anchor)
extend_schema_field(
    inline_serializer(
        'RootLease',
        {
            'holder': s.CharField(allow_null=True),
            'token': s.IntegerField(allow_null=True),
            'expires_at': s.DateTimeField(allow_null=True),
            'live': s.BooleanField(),
            'highest_token': s.IntegerField(),
        },
    )
)(serializers.RootSerializer.get_lease)
# The root kind's template and policy from the catalogue (null when the kind is no longer declared).
extend_schema_field(s.DictField(allow_null=True))(serializers.RootSerializer.get_awx_template)
extend_schema_field(s.DictField(allow_null=True))(serializers.RootSerializer.get_policy)
# Why the root's unicop_policy override cannot be run, naming the key (null: the policy above is in force).
extend_schema_field(s.CharField(allow_null=True))(serializers.RootSerializer.get_policy_error)
