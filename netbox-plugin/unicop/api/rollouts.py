"""The rollouts' REST API (docs/decisions/0061, docs/plugin-api.md): open a rollout (the resolver),
report a run's end (the rollout worker), list and show rollouts, resume and abort (the admin API, for a
person). Views translate HTTP only; the decisions are in rollouts.py."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import rollouts
from ..models import Rollout, RolloutStateChoices, RunStateChoices


class RolloutPermission(BasePermission):
    """Reading needs unicop.view_rollout; every POST changes a rollout: unicop.change_rollout."""

    def has_permission(self, request, view):
        perm = (
            'unicop.view_rollout' if request.method in ('GET', 'HEAD', 'OPTIONS') else 'unicop.change_rollout'
        )
        return request.user.has_perm(perm)


class IntentSerializer(serializers.Serializer):
    root_key = serializers.CharField(max_length=100)
    intent = serializers.JSONField()


class GateSerializer(serializers.Serializer):
    rollout_id = serializers.CharField(max_length=100, help_text='the NetBox request id of the intents')
    plan = serializers.CharField(max_length=100)
    failure_threshold = serializers.FloatField(min_value=0, max_value=1)
    min_roots = serializers.IntegerField(min_value=1)
    change_ids = serializers.ListField(child=serializers.CharField(max_length=100), default=list)
    actor = serializers.CharField(max_length=150, allow_blank=True, default='')
    intents = IntentSerializer(many=True, allow_empty=False)

    def validate_plan(self, plan):
        if error := rollouts.plan_error(plan):
            raise ValidationError(error)
        return plan


class GateBatchSerializer(serializers.Serializer):
    requests = GateSerializer(many=True, allow_empty=False, max_length=1000)


class OutcomeSerializer(serializers.Serializer):
    root_key = serializers.CharField(max_length=100)
    run_id = serializers.CharField(max_length=64)
    state = serializers.ChoiceField(choices=sorted(RunStateChoices.TERMINAL))
    outcome_class = serializers.CharField(max_length=50, allow_blank=True, allow_null=True, default='')
    started_at = serializers.DateTimeField()


class DecisionSerializer(serializers.Serializer):
    by = serializers.CharField(max_length=150)
    reason = serializers.CharField(max_length=400, allow_blank=True, default='')


def _valid(serializer_class, request):
    s = serializer_class(data=request.data)
    s.is_valid(raise_exception=True)
    return s.validated_data


def _answer(rollout, transition=None, intents=(), **extra):
    return {
        'rollout': rollouts.summary(rollout) if rollout is not None else None,
        'transition': transition,
        'release': list(intents),
        **extra,
    }


class RolloutListView(APIView):
    """GET: the rollouts, newest first (?state=open|halted|aborted|done, ?root=<key>). POST: the resolver's
    gate for one request's intents (opens the rollout the first time the request has enough roots)."""

    permission_classes = [IsAuthenticated, RolloutPermission]
    queryset = Rollout.objects.all()  # what drf-spectacular reads the path parameter's type from

    def get_view_name(self):
        return 'Rollouts'

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        qs = Rollout.objects.all()
        state = request.query_params.get('state')
        if state:
            if state not in RolloutStateChoices.values():
                raise ValidationError({'state': f'one of {", ".join(RolloutStateChoices.values())}'})
            qs = qs.filter(state=state)
        if root := request.query_params.get('root'):
            qs = qs.filter(members__root__key=root)
        return Response({'results': [rollouts.summary(r) for r in qs[:100]]})

    @extend_schema(request=GateSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        """The resolver's gate: which of these intents of one request are held (docs/decisions/0061)."""
        return Response(_gated(_valid(GateSerializer, request)))


def _gated(d):
    rollout, created, held = rollouts.gate(
        d['rollout_id'],
        d['plan'],
        d['failure_threshold'],
        d['min_roots'],
        d['change_ids'],
        d['actor'],
        [(i['root_key'], i['intent']) for i in d['intents']],
    )
    return _answer(rollout, 'opened' if created else None, held=held)


class RolloutGateBatchView(APIView):
    """POST: the resolver's gate for the intents of every request of one batch, in one call (decision
    0069): each request as POST rollouts/ takes it, each in its own transaction; the answers in order."""

    permission_classes = [IsAuthenticated, RolloutPermission]
    queryset = Rollout.objects.all()  # what drf-spectacular reads the path parameter's type from

    def get_view_name(self):
        return 'Rollout gate'

    @extend_schema(request=GateBatchSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        d = _valid(GateBatchSerializer, request)
        return Response({'results': [_gated(each) for each in d['requests']]})


class RolloutLiveView(APIView):
    """GET: the roots a run's end may be credited to (released members of live rollouts) and the time up
    to which that list is complete (rollouts.live_roots; the rollout worker reports only these ends), with
    live rollouts and their members counted per state (rollouts.live_counts; the workers' gauges)."""

    permission_classes = [IsAuthenticated, RolloutPermission]
    queryset = Rollout.objects.all()  # what drf-spectacular reads the path parameter's type from

    def get_view_name(self):
        return 'Rollouts live roots'

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        at, keys = rollouts.live_roots()
        return Response({'at': at.isoformat(), 'roots': keys, **rollouts.live_counts()})


class RolloutOutcomeView(APIView):
    """POST: a run ended (the rollout worker, from unicop.outcomes)."""

    permission_classes = [IsAuthenticated, RolloutPermission]
    queryset = Rollout.objects.all()  # what drf-spectacular reads the path parameter's type from

    def get_view_name(self):
        return 'Rollout outcome'

    @extend_schema(request=OutcomeSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        d = _valid(OutcomeSerializer, request)
        steps = rollouts.record_outcomes(
            d['root_key'], d['run_id'], d['state'], d['outcome_class'], d['started_at']
        )
        first, *more = steps or [(None, None, [])]
        # More than one live rollout credited with this end (one opened before a newer one stopped
        # enrolling roots an older one holds): each one's step too, under `also`.
        return Response(_answer(*first, **({'also': [_answer(*step) for step in more]} if more else {})))


class RolloutDetailView(APIView):
    permission_classes = [IsAuthenticated, RolloutPermission]
    queryset = Rollout.objects.all()  # what drf-spectacular reads the path parameter's type from

    def get_view_name(self):
        return 'Rollout'

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, rollout_id):
        rollout = Rollout.objects.filter(rollout_id=rollout_id).first()
        if rollout is None:
            return Response({'detail': f'no rollout {rollout_id}'}, status=status.HTTP_404_NOT_FOUND)
        return Response(rollouts.summary(rollout))


class RolloutDecisionView(APIView):
    """POST resume/ or abort/ with {by, reason}: a person's decision (through the admin API)."""

    permission_classes = [IsAuthenticated, RolloutPermission]
    queryset = Rollout.objects.all()  # what drf-spectacular reads the path parameter's type from
    decision = None

    def get_view_name(self):
        return f'Rollout {self.decision}'

    @extend_schema(request=DecisionSerializer, responses=OpenApiTypes.OBJECT)
    def post(self, request, rollout_id):
        d = _valid(DecisionSerializer, request)
        try:
            if self.decision == 'resume':
                rollout, transition, intents = rollouts.resume(rollout_id, d['by'], d['reason'])
                return Response(_answer(rollout, transition, intents))
            rollout, never = rollouts.abort(rollout_id, d['by'], d['reason'])
            return Response(_answer(rollout, 'aborted', never_launched=never))
        except Rollout.DoesNotExist:
            return Response({'detail': f'no rollout {rollout_id}'}, status=status.HTTP_404_NOT_FOUND)
        except rollouts.RolloutRefused as exc:
            return Response(exc.body(), status=status.HTTP_409_CONFLICT)
