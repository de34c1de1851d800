"""The plugin's REST API (docs/plugin-api.md): roots, leases, freeze, runs and the resolver.

Views only translate HTTP: they validate the request with a serializer, call the domain (leases.py,
freeze.py, runs.py, roots.py) with plain values, and turn its errors into answers (DomainErrorMixin).
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from netbox.api.authentication import TokenPermissions
from netbox.api.viewsets import NetBoxModelViewSet, NetBoxReadOnlyModelViewSet
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed, PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.routers import APIRootView
from rest_framework.views import APIView

from .. import leases, run_states, runs
from ..filtersets import ReconciliationRunFilterSet, RootFilterSet
from ..freeze import set_frozen
from ..models import ReconciliationRun, Root, RunStateChoices, held_rollout_ids
from ..roots import current_snapshot, resolve_changes
from ..snapshot import SnapshotHidden, SnapshotUnencodable, read_hash_now
from . import serializers
from .pagination import KeysetPagination


class UnicopRootView(APIRootView):
    """
    UNICOP API root: lists the plugin's REST endpoints.
    """

    def get_view_name(self):
        return 'UNICOP'


class DomainErrorMixin:
    """The domain's errors as HTTP answers: 409 for lease and fence conflicts (leases.py) and for run
    writes the state machine refuses (run_states.py), each with its own body; 400 `{"journal": [...]}`
    for a run write's malformed journal entry (runs.py); 403 for a snapshot the token may not view whole
    (snapshot.py, docs/decisions/0048); 422 naming the object and field for a snapshot holding a value it
    has no canonical form for (snapshot.SnapshotUnencodable)."""

    def handle_exception(self, exc):
        if isinstance(exc, (leases.LeaseConflict, run_states.RunStateConflict)):
            return Response(exc.body(), status=status.HTTP_409_CONFLICT)
        if isinstance(exc, runs.InvalidJournal):
            exc = ValidationError({'journal': exc.messages})
        if isinstance(exc, SnapshotHidden):
            exc = PermissionDenied(str(exc))
        if isinstance(exc, SnapshotUnencodable):
            body = {'detail': str(exc), 'object_type': exc.object_type, 'id': exc.object_id}
            body['field'] = exc.field
            return Response(body, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        return super().handle_exception(exc)


class RootChangePermission(TokenPermissions):
    """POST actions on a root (lease, freeze) change it: NetBox's `change` permission, not `add`."""

    perms_map = {**TokenPermissions.perms_map, 'POST': ['%(app_label)s.change_%(model_name)s']}


class RunChangePermission(TokenPermissions):
    """The lean run write (POST) changes a run: NetBox's `change` permission, not `add`."""

    perms_map = {**TokenPermissions.perms_map, 'POST': ['%(app_label)s.change_%(model_name)s']}


class RootViewSet(DomainErrorMixin, NetBoxReadOnlyModelViewSet):
    queryset = Root.objects.select_related('last_run').annotate(held_rollout_id=held_rollout_ids())
    # Prefetched only when the answer carries them: a listing with NetBox's `fields` (the sweeper's)
    # loads no anchors and no tags (docs/decisions/0043). `policy` and `policy_error` read the anchor's
    # unicop_policy (roots.root_policy): the drift scheduler's listing asks for policy, not anchor.
    field_prefetches = {('anchor', 'policy', 'policy_error'): ['anchor'], ('tags',): ['tags']}
    serializer_class = serializers.RootSerializer
    filterset_class = RootFilterSet
    pagination_class = KeysetPagination
    CHANGE_ACTIONS = ('lease', 'lease_renew', 'lease_release', 'freeze', 'unfreeze')

    def get_permissions(self):
        if self.action in self.CHANGE_ACTIONS:
            return [RootChangePermission()]
        return super().get_permissions()

    def initial(self, request, *args, **kwargs):
        if self.action not in self.CHANGE_ACTIONS:
            return super().initial(request, *args, **kwargs)
        # Skip BaseViewSet's restriction by HTTP method (POST -> add); these actions change the root.
        APIView.initial(self, request, *args, **kwargs)
        self.queryset = self.queryset.restrict(request.user, 'change')

    def get_queryset(self):
        # Keyset order (id) for the listing; NetBox's default ordering would defeat the index scan.
        return super().get_queryset().order_by('pk')

    # The listing and the detail show the stored current hash and whether it is stale (`hash_stale`,
    # since when, when it was computed): no snapshot is ever computed for them (docs/decisions/0043).
    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        root = self.get_object()
        response = Response(self.get_serializer(root).data)
        if etag := self._get_etag(root):
            response['ETag'] = etag
        return response

    @action(detail=True, methods=['get'])
    def snapshot(self, request, pk=None):
        root = self.get_object()
        # The generation read before the snapshot: never newer than the data hashed (decision 0067).
        generation = root.hash_generation
        snap, digest = current_snapshot(root, request.user)
        return Response({'root': root.key, 'hash': digest, 'hash_generation': generation, 'snapshot': snap})

    @action(detail=True, methods=['get'], url_path='hash')
    def current_hash(self, request, pk=None):
        """The hash and generation read now, together, without the snapshot (docs/decisions/0067)."""
        root = self.get_object()
        digest, generation, settled = read_hash_now(root, request.user)
        return Response({'root': root.key, 'hash': digest, 'hash_generation': generation, 'settled': settled})

    def _valid(self, serializer_class, request):
        s = serializer_class(data=request.data)
        s.is_valid(raise_exception=True)
        return s.validated_data

    @action(detail=True, methods=['post'], url_path='lease')
    def lease(self, request, pk=None):
        data = self._valid(serializers.LeaseAcquireSerializer, request)
        root = leases.acquire(self.get_object().pk, data['holder'], data['ttl_seconds'])
        body = _lease_body(root)
        if data['context']:
            try:
                body.update(self._lease_context(request, root.pk))
            except (SnapshotHidden, SnapshotUnencodable):
                # Refused whole (or not encodable): the lease taken for it is given back, not left to expire.
                leases.release(root.pk, root.lease_token)
                raise
        return Response(body, status=status.HTTP_201_CREATED)

    def _lease_context(self, request, root_pk):
        """What the holder reads first once the lease is taken — the root's last run and reconciled hash,
        its open runs (as `GET runs/?root=&state=…` lists them) and its snapshot — read after the lease's
        transaction committed, as the separate requests would (docs/decisions/0045)."""
        root = Root.objects.select_related('last_run').get(pk=root_pk)
        open_runs = (
            ReconciliationRun.objects.restrict(request.user, 'view')
            .filter(root=root)
            .exclude(state__in=RunStateChoices.TERMINAL)
            .select_related('root')
            .prefetch_related('tags')[:50]
        )
        snap, digest = current_snapshot(root, request.user)
        context = {'request': request}
        return {
            'last_reconciled_hash': root.last_reconciled_hash,
            'last_run': serializers.LastRunSerializer(root.last_run).data if root.last_run else None,
            'open_runs': serializers.ReconciliationRunSerializer(open_runs, many=True, context=context).data,
            'snapshot': {
                'root': root.key,
                'hash': digest,
                # Read with the root, before the snapshot: never newer than the data hashed (decision 0067).
                'hash_generation': root.hash_generation,
                'snapshot': snap,
            },
        }

    @action(detail=True, methods=['post'], url_path='lease/renew')
    def lease_renew(self, request, pk=None):
        data = self._valid(serializers.LeaseRenewSerializer, request)
        root = leases.renew(self.get_object().pk, data['token'], data['ttl_seconds'])
        return Response(_lease_body(root))

    @action(detail=True, methods=['post'], url_path='lease/release')
    def lease_release(self, request, pk=None):
        data = self._valid(serializers.LeaseReleaseSerializer, request)
        leases.release(self.get_object().pk, data['token'])
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _set_frozen(self, request, frozen, serializer_class):
        data = self._valid(serializer_class, request)
        root = self.get_object()
        set_frozen(root, frozen, data['reason'], request.user)
        root = self.get_queryset().get(pk=root.pk)
        return Response(self.get_serializer(root).data)

    @action(detail=True, methods=['post'])
    def freeze(self, request, pk=None):
        return self._set_frozen(request, True, serializers.FreezeSerializer)

    @action(detail=True, methods=['post'])
    def unfreeze(self, request, pk=None):
        return self._set_frozen(request, False, serializers.UnfreezeSerializer)


def _lease_body(root):
    return {
        'token': root.lease_token,
        'holder': root.lease_holder,
        'expires_at': root.lease_expires_at.isoformat(),
    }


class ReconciliationRunViewSet(DomainErrorMixin, NetBoxModelViewSet):
    queryset = ReconciliationRun.objects.select_related('root').prefetch_related('tags')
    serializer_class = serializers.ReconciliationRunSerializer
    filterset_class = ReconciliationRunFilterSet
    lookup_field = 'run_id'
    lookup_value_regex = '[^/]+'
    http_method_names = ['get', 'post', 'patch', 'head', 'options']

    def get_permissions(self):
        if self.action == 'write':
            return [RunChangePermission()]
        return super().get_permissions()

    def initial(self, request, *args, **kwargs):
        if self.action != 'write':
            return super().initial(request, *args, **kwargs)
        # Skip BaseViewSet's restriction by HTTP method (POST -> add): a lean write changes the run.
        APIView.initial(self, request, *args, **kwargs)
        self.queryset = self.queryset.restrict(request.user, 'change')

    @action(detail=True, methods=['post'], url_path='write')
    def write(self, request, run_id=None):
        """The lean run write (docs/decisions/0064): the same fence, state machine, journal entry and root
        update as `PATCH runs/{run_id}/` (runs.update_run, one transaction), the run's fields stored with
        one UPDATE — no change-log record, no event-rule processing, no search-index job for it (the run's
        own log and `unicop.audit` record each step) — and an answer of three fields."""
        run = self.get_object()
        data = self._valid(serializers.RunWriteSerializer, request)
        journal = data.pop('journal', None)
        token = data.pop('fencing_token')
        state = data.pop('state', None)

        def save():
            # The run carries its latest writer's token, as a PATCH leaves it (a resumed run: the new one).
            fields = {**data, 'fencing_token': token, 'last_updated': timezone.now()}
            if state is not None:
                fields['state'] = state
            ReconciliationRun.objects.filter(pk=run.pk).update(**fields)
            for name, value in fields.items():
                setattr(run, name, value)
            return run

        runs.update_run(run, token, state, journal, request.user, save)
        return Response({'run_id': run.run_id, 'state': run.state, 'finished': run.finished})

    def _valid(self, serializer_class, request):
        s = serializer_class(data=request.data)
        s.is_valid(raise_exception=True)
        return dict(s.validated_data)

    def bulk_partial_update(self, request, *args, **kwargs):
        # Each run write passes the fence on its own root: no bulk writes.
        raise MethodNotAllowed(request.method, detail='Runs are updated one at a time: PATCH runs/{run_id}/.')

    def create(self, request, *args, **kwargs):
        if isinstance(request.data, list):
            raise ValidationError({'non_field_errors': ['Runs are created one at a time.']})
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        self._write(runs.create_run, serializer.validated_data['root'].pk, serializer, super().perform_create)

    def perform_update(self, serializer):
        self._write(runs.update_run, serializer.instance, serializer, super().perform_update)

    def _write(self, write, target, serializer, perform):
        """One run write through runs.py; `perform` is NetBox's save, which checks object permissions."""

        def save():
            perform(serializer)
            return serializer.instance

        data = serializer.validated_data
        journal = data.pop('journal', None)
        write(target, data['fencing_token'], data.get('state'), journal, self.request.user, save)


class ResolvePermission(BasePermission):
    def has_permission(self, request, view):
        return request.user.has_perm('unicop.view_root')


class ResolveView(APIView):
    """Which roots does each change touch? (docs/plugin-api.md, Resolver)"""

    permission_classes = [IsAuthenticated, ResolvePermission]

    def get_view_name(self):
        return 'Resolve'

    @extend_schema(
        request=serializers.ResolveRequestSerializer, responses=serializers.ResolveResponseSerializer
    )
    def post(self, request):
        s = serializers.ResolveRequestSerializer(data=request.data)
        if not s.is_valid():
            raise ValidationError(_flatten_errors(s.errors))
        results = [{'root_keys': keys} for keys in resolve_changes(s.validated_data['changes'])]
        return Response({'results': results})


def _flatten_errors(errors, prefix=''):
    """{'changes': [{}, {'event': [..]}]} -> {'changes[1].event': [..]}: the index and field, named."""
    out = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            if str(key).isdigit():
                name = f'{prefix}[{key}]'
            else:
                name = f'{prefix}.{key}' if prefix else str(key)
            out.update(_flatten_errors(value, name))
    elif isinstance(errors, list) and errors and all(isinstance(e, (dict, list)) for e in errors):
        for i, value in enumerate(errors):
            out.update(_flatten_errors(value, f'{prefix}[{i}]'))
    elif errors:
        out[prefix or 'non_field_errors'] = errors
    return out
