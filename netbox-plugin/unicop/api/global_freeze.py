"""`/api/plugins/unicop/global-freeze/` (docs/decisions/0062): GET the global freeze NetBox shows, PUT the
latest global record of unicop.control (the bridge's mirror). Views translate HTTP only; global_freeze.py
keeps the record."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import global_freeze
from ..models import Root


class GlobalFreezePermission(BasePermission):
    """Reading needs unicop.view_root; the mirror's PUT unicop.change_root (the freeze governs every root)
    and, as NetBox's TokenPermissions checks for every other write, a token with write enabled."""

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return request.user.has_perm('unicop.view_root')
        if request.auth is not None and not getattr(request.auth, 'write_enabled', True):
            return False  # a read-only token
        return request.user.has_perm('unicop.change_root')


class GlobalFreezeSerializer(serializers.Serializer):
    frozen = serializers.BooleanField()
    actor = serializers.CharField(max_length=150)
    reason = serializers.CharField(max_length=1000)
    at = serializers.DateTimeField()


class HeldSerializer(serializers.Serializer):
    # null: no global record mirrored yet (never frozen, or NetBox's cache lost it until the next put)
    record = GlobalFreezeSerializer(allow_null=True)


class GlobalFreezeView(APIView):
    permission_classes = [GlobalFreezePermission]
    # NetBox's schema generator reads a view's queryset; the record itself is not a Root.
    queryset = Root.objects.none()

    @extend_schema(
        description='The global freeze NetBox shows: the latest global record the bridge put.',
        responses={200: HeldSerializer},
    )
    def get(self, request):
        held = global_freeze.current()
        return Response({'record': GlobalFreezeSerializer(held).data if held else None})

    @extend_schema(
        description='The bridge mirrors the latest global record of unicop.control; the last put is kept.',
        request=GlobalFreezeSerializer,
        responses={200: GlobalFreezeSerializer},
    )
    def put(self, request):
        s = GlobalFreezeSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return Response(GlobalFreezeSerializer(global_freeze.record(s.validated_data)).data)
