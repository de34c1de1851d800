from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from extras.models import JournalEntry
from netbox.api.authentication import TokenPermissions
from netbox.api.viewsets import NetBoxModelViewSet, NetBoxReadOnlyModelViewSet
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed, ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.routers import APIRootView
from rest_framework.views import APIView

from .. import leases, run_states
from ..filtersets import ReconciliationRunFilterSet, RootFilterSet
from ..models import ReconciliationRun, Root, RunStateChoices
from ..roots import refresh_hashes, resolve_change
from ..snapshot import read_snapshot
from . import serializers
from .pagination import KeysetPagination


class UnicopRootView(APIRootView):
    """
    UNICOP API root: lists the plugin's REST endpoints.
    """

    def get_view_name(self):
        return 'UNICOP'


class LeaseConflictMixin:
    """409 for lease and fence conflicts (leases.py) and for run writes the state machine refuses
    (run_states.py), each with its own body."""

    def handle_exception(self, exc):
        if isinstance(exc, (leases.LeaseConflict, run_states.RunStateConflict)):
            return Response(exc.body(), status=status.HTTP_409_CONFLICT)
        return super().handle_exception(exc)


class RootChangePermission(TokenPermissions):
    """POST actions on a root (lease, freeze) change it: NetBox's `change` permission, not `add`."""

    perms_map = {**TokenPermissions.perms_map, 'POST': ['%(app_label)s.change_%(model_name)s']}


def _refresh_dirty(roots):
    """Roots whose hash a change marked stale get it recomputed now (rare: normally done after commit)."""
    refresh_hashes([r for r in roots if r.hash_dirty])


class RootViewSet(LeaseConflictMixin, NetBoxReadOnlyModelViewSet):
    queryset = Root.objects.select_related('last_run').prefetch_related('anchor', 'tags')
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

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        _refresh_dirty(page)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        root = self.get_object()
        _refresh_dirty([root])
        response = Response(self.get_serializer(root).data)
        if etag := self._get_etag(root):
            response['ETag'] = etag
        return response

    @action(detail=True, methods=['get'])
    def snapshot(self, request, pk=None):
        root = self.get_object()
        snap, digest = read_snapshot(root)
        # Self-healing: the fresh hash also refreshes the maintained column (compare-and-set on the
        # generation read before the snapshot, so a newer change's dirty mark is never cleared).
        if root.current_hash != digest or root.hash_dirty:
            Root.objects.filter(pk=root.pk, hash_generation=root.hash_generation).update(
                current_hash=digest, hash_dirty=False
            )
        return Response({'root': root.key, 'hash': digest, 'snapshot': snap})

    def _valid(self, serializer_class, request):
        s = serializer_class(data=request.data)
        s.is_valid(raise_exception=True)
        return s.validated_data

    @action(detail=True, methods=['post'], url_path='lease')
    def lease(self, request, pk=None):
        data = self._valid(serializers.LeaseAcquireSerializer, request)
        root = leases.acquire(self.get_object().pk, data['holder'], data['ttl_seconds'])
        return Response(_lease_body(root), status=status.HTTP_201_CREATED)

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


def set_frozen(root, frozen, reason, user):
    """Freeze or unfreeze with a reason: change-logged (save) and journalled on the root."""
    with transaction.atomic():
        root.snapshot()
        root.frozen = frozen
        root.frozen_reason = reason if frozen else ''
        root._changelog_message = f'{"Frozen" if frozen else "Unfrozen"}: {reason}' if reason else None
        root.full_clean()
        root.save()
        JournalEntry.objects.create(
            assigned_object=root,
            created_by=user if user.is_authenticated else None,
            kind='warning' if frozen else 'info',
            comments=f'{"Frozen" if frozen else "Unfrozen"} by {user}: {reason or "(no reason given)"}',
        )


def _lease_body(root):
    return {
        'token': root.lease_token,
        'holder': root.lease_holder,
        'expires_at': root.lease_expires_at.isoformat(),
    }


class ReconciliationRunViewSet(LeaseConflictMixin, NetBoxModelViewSet):
    queryset = ReconciliationRun.objects.select_related('root').prefetch_related('tags')
    serializer_class = serializers.ReconciliationRunSerializer
    filterset_class = ReconciliationRunFilterSet
    lookup_field = 'run_id'
    lookup_value_regex = '[^/]+'
    http_method_names = ['get', 'post', 'patch', 'head', 'options']

    def bulk_partial_update(self, request, *args, **kwargs):
        # Each run write passes the fence on its own root: no bulk writes.
        raise MethodNotAllowed(request.method, detail='Runs are updated one at a time: PATCH runs/{run_id}/.')

    def create(self, request, *args, **kwargs):
        if isinstance(request.data, list):
            raise ValidationError({'non_field_errors': ['Runs are created one at a time.']})
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        with transaction.atomic():
            root = Root.objects.select_for_update().get(pk=serializer.validated_data['root'].pk)
            leases.check_fence(root, serializer.validated_data['fencing_token'])
            run_states.check_create(
                serializer.validated_data.get('state', ReconciliationRun._meta.get_field('state').default)
            )
            entry = run_journal_entry(root, serializer.validated_data.pop('journal', None), self.request.user)
            super().perform_create(serializer)
            record_run_on_root(root, serializer.instance)
            if entry is not None:
                entry.save()

    def perform_update(self, serializer):
        with transaction.atomic():
            run = serializer.instance
            root = Root.objects.select_for_update().get(pk=run.root_id)
            leases.check_fence(root, serializer.validated_data['fencing_token'])
            run.refresh_from_db(fields=['state'])
            run_states.check_move(run.state, serializer.validated_data.get('state', run.state))
            entry = run_journal_entry(root, serializer.validated_data.pop('journal', None), self.request.user)
            super().perform_update(serializer)
            record_run_on_root(root, serializer.instance)
            if entry is not None:
                entry.save()


def run_journal_entry(root, journal, user):
    """The journal entry a run write carries, on the root's anchor object, validated and not yet saved
    (saved after the run, in the run's transaction and behind its fence), or None."""
    if journal is None:
        return None
    entry = JournalEntry(
        assigned_object_type_id=root.anchor_type_id,
        assigned_object_id=root.anchor_id,
        created_by=user if user.is_authenticated else None,
        kind=journal['kind'],
        comments=journal['comments'],
    )
    try:
        entry.full_clean()
    except DjangoValidationError as exc:
        raise ValidationError({'journal': exc.messages}) from exc
    return entry


def record_run_on_root(root, run):
    """The root's last run and last reconciled hash follow its newest run (called with the root locked)."""
    update = {}
    if run.state in RunStateChoices.TERMINAL and run.finished is None:
        run.finished = timezone.now()
        ReconciliationRun.objects.filter(pk=run.pk).update(finished=run.finished)
    last = ReconciliationRun.objects.filter(pk=root.last_run_id).only('started', 'id').first()
    if last is None or (run.started, run.pk) >= (last.started, last.pk):
        update['last_run'] = run
    if run.state == RunStateChoices.SUCCEEDED:
        update['last_reconciled_hash'] = run.snapshot_hash
    if update:
        Root.objects.filter(pk=root.pk).update(**update)


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
        results = [{'root_keys': resolve_change(change)} for change in s.validated_data['changes']]
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
