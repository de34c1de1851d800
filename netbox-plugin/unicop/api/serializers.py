import re

from django.contrib.contenttypes.models import ContentType
from extras.choices import JournalEntryKindChoices
from netbox.api.serializers import NetBoxModelSerializer
from rest_framework import serializers

from ..catalogue import catalogue
from ..models import (
    CauseEventChoices,
    ReconciliationRun,
    Root,
    RootStatusChoices,
    RunCauseChoices,
    RunModeChoices,
    RunStateChoices,
)
from ..roots import root_policy


class LastRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReconciliationRun
        fields = (
            'id',
            'run_id',
            'state',
            'fencing_token',
            'snapshot_hash',
            'cause',
            'mode',
            'started',
            'finished',
            'awx_job_type',
            'awx_job_id',
            'awx_job_url',
            'outcome_class',
        )


class RootSerializer(NetBoxModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name='plugins-api:unicop-api:root-detail')
    anchor = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=RootStatusChoices, read_only=True)
    # current_hash is stale: a change since it was computed has not been hashed yet (docs/decisions/0043).
    hash_stale = serializers.BooleanField(source='hash_dirty', read_only=True)
    last_run = LastRunSerializer(read_only=True, allow_null=True)
    lease = serializers.SerializerMethodField()
    awx_template = serializers.SerializerMethodField()
    policy = serializers.SerializerMethodField()
    policy_error = serializers.SerializerMethodField()

    class Meta:
        model = Root
        fields = (
            'id',
            'url',
            'display',
            'key',
            'kind',
            'anchor',
            'frozen',
            'frozen_reason',
            'status',
            'current_hash',
            'hash_stale',
            'hash_stale_since',
            'hash_computed_at',
            'last_reconciled_hash',
            'last_run',
            'last_drift_check',
            'lease',
            'awx_template',
            'policy',
            'policy_error',
            'tags',
            'custom_fields',
            'created',
            'last_updated',
        )
        read_only_fields = fields
        brief_fields = ('display', 'id', 'key', 'kind', 'url')

    def get_anchor(self, root):
        ct = ContentType.objects.get_for_id(root.anchor_type_id)
        anchor = root.anchor
        return {
            'object_type': f'{ct.app_label}.{ct.model}',
            'id': root.anchor_id,
            'display': str(anchor) if anchor is not None else None,
        }

    def get_lease(self, root):
        return {
            'holder': root.lease_holder or None,
            'token': root.lease_token,
            'expires_at': root.lease_expires_at.isoformat() if root.lease_expires_at else None,
            'live': root.lease_live(),
            'highest_token': root.highest_token,
        }

    def _kind(self, root):
        return catalogue().kinds.get(root.kind)

    def get_awx_template(self, root):
        kind = self._kind(root)
        return dict(kind.awx_template) if kind else None

    def _policy(self, root):
        # The root's policy: its kind's with the anchor's unicop_policy over it (docs/decisions/0062).
        if not hasattr(root, '_unicop_policy'):
            root._unicop_policy = root_policy(root, self._kind(root))
        return root._unicop_policy

    def get_policy(self, root):
        return self._policy(root)[0]

    def get_policy_error(self, root):
        return self._policy(root)[1]


class RootRefField(serializers.RelatedField):
    """A root by id (42) or by key ("prefix/42")."""

    default_error_messages = {
        'does_not_exist': 'Root {value} does not exist.',
        'invalid': 'A root id (integer) or key ("kind/anchor-id") is required.',
    }

    def to_internal_value(self, value):
        qs = self.get_queryset()
        if isinstance(value, bool):
            self.fail('invalid')
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            found = qs.filter(pk=int(value)).first()
        elif isinstance(value, str) and '/' in value:
            found = qs.filter(key=value).first()
        else:
            self.fail('invalid')
        if found is None:
            self.fail('does_not_exist', value=value)
        return found

    def to_representation(self, value):
        return {'id': value.pk, 'key': value.key}


class LogLineSerializer(serializers.Serializer):
    ts = serializers.DateTimeField()
    level = serializers.ChoiceField(choices=('debug', 'info', 'warning', 'error'))
    message = serializers.CharField(max_length=4000)
    meta = serializers.DictField(required=False, default=dict)


class RunJournalSerializer(serializers.Serializer):
    """A journal entry written with a run (write-only): recorded on the root's anchor object."""

    kind = serializers.ChoiceField(choices=JournalEntryKindChoices)
    comments = serializers.CharField(min_length=1, max_length=4000)

    def validate(self, data):
        # A PATCH is partial, and DRF then lets a nested serializer's fields be missing too.
        missing = {
            name: [field.error_messages['required']]
            for name, field in self.fields.items()
            if name not in data
        }
        if missing:
            raise serializers.ValidationError(missing)
        return data


# A UUID as UNICOP writes them (lowercase, hyphenated): change and intent ids.
UUID_PATTERN = r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
UUID_MESSAGE = 'A UUID (lowercase, hyphenated) is required.'
# How many change ids or request ids one run may name.
MAX_CAUSE_IDS = 100


def uuid_field(**kwargs):
    return serializers.RegexField(UUID_PATTERN, error_messages={'invalid': UUID_MESSAGE}, **kwargs)


# Blast radius (docs/decisions/0065): a member key is "<app_label.model>/<id>", its digest a sha256 hex.
MEMBER_KEY_PATTERN = r'^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*/[0-9]+$'
MAX_MEMBER_DIGESTS = 100_000


def validate_member_digests(value):
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_MEMBER_DIGESTS:
        raise serializers.ValidationError(
            f'An object of at most {MAX_MEMBER_DIGESTS} "<app_label.model>/<id>": sha256 hex digest pairs.'
        )
    for key, digest in value.items():
        if not re.match(MEMBER_KEY_PATTERN, key):
            raise serializers.ValidationError(f'{key[:120]!r} is not a member key "<app_label.model>/<id>".')
        if not isinstance(digest, str) or not re.fullmatch(r'[0-9a-f]{64}', digest):
            raise serializers.ValidationError(f'The digest of {key} is not a sha256 hex digest.')
    return value


class BlastRadiusSerializer(serializers.Serializer):
    """The diff that held a run for approval: counts against the baseline run, up to 20 member keys."""

    baseline_run_id = serializers.CharField(max_length=64)
    added = serializers.IntegerField(min_value=0)
    removed = serializers.IntegerField(min_value=0)
    changed = serializers.IntegerField(min_value=0)
    members = serializers.IntegerField(min_value=0)
    share = serializers.FloatField(min_value=0, max_value=1)
    limit = serializers.DictField()
    keys = serializers.ListField(child=serializers.RegexField(MEMBER_KEY_PATTERN), max_length=20)


class GateDecisionSerializer(serializers.Serializer):
    """A person's decision on a run the blast-radius gate holds, written once by the bridge."""

    decision = serializers.ChoiceField(choices=('approved', 'denied'))
    by = serializers.CharField(max_length=150)
    sub = serializers.CharField(max_length=255, allow_blank=True)
    reason = serializers.CharField(max_length=500, allow_blank=True, allow_null=True)
    at = serializers.DateTimeField()


def _shaped(serializer_class):
    """A validator holding a JSON field's value to `serializer_class`'s shape (kept as sent: a nested
    serializer would make the model serializer refuse the write as a nested one)."""

    def validate(value):
        if value is None:
            return
        checked = serializer_class(data=value)
        if not checked.is_valid():
            raise serializers.ValidationError(checked.errors)

    return validate


def json_field(validator):
    return serializers.JSONField(required=False, allow_null=True, validators=[validator])


class ReconciliationRunSerializer(NetBoxModelSerializer):
    url = serializers.HyperlinkedIdentityField(
        view_name='plugins-api:unicop-api:reconciliationrun-detail', lookup_field='run_id'
    )
    root = RootRefField(queryset=Root.objects.all())
    fencing_token = serializers.IntegerField(min_value=0)
    cause = serializers.ChoiceField(choices=RunCauseChoices)
    # apply (the default) or check (docs/decisions/0054); set when the run is created, never changed.
    mode = serializers.ChoiceField(choices=RunModeChoices, required=False)
    state = serializers.ChoiceField(choices=RunStateChoices, required=False)
    log_lines = LogLineSerializer(many=True, required=False)
    journal = RunJournalSerializer(write_only=True, required=False)
    # The cause chain (docs/decisions/0039); each names itself in a 400.
    intent_id = uuid_field(required=False, allow_blank=True)
    change_ids = serializers.ListField(child=uuid_field(), max_length=MAX_CAUSE_IDS, required=False)
    # NetBox's request ids are UUIDs too, but NetBox's word, not ours: only their length is held to.
    request_ids = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=MAX_CAUSE_IDS, required=False
    )
    actor = serializers.CharField(max_length=150, required=False, allow_blank=True)
    cause_event = serializers.ChoiceField(choices=CauseEventChoices, required=False, allow_blank=True)
    cause_object_type = serializers.RegexField(
        r'^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$', max_length=100, required=False, allow_blank=True
    )
    cause_object_id = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    runbook = serializers.CharField(source='runbook_url', read_only=True, allow_null=True)
    member_digests = json_field(validate_member_digests)
    blast_radius = json_field(_shaped(BlastRadiusSerializer))
    gate_decision = json_field(_shaped(GateDecisionSerializer))

    class Meta:
        model = ReconciliationRun
        fields = (
            'id',
            'url',
            'display',
            'run_id',
            'root',
            'snapshot_hash',
            'fencing_token',
            'cause',
            'mode',
            'state',
            'awx_job_type',
            'awx_job_id',
            'awx_job_url',
            'verify_job_id',
            'started',
            'finished',
            'outcome_class',
            'summary',
            'log_lines',
            'intent_id',
            'change_ids',
            'request_ids',
            'actor',
            'cause_event',
            'cause_object_type',
            'cause_object_id',
            'runbook',
            'member_digests',
            'blast_radius',
            'gate_decision',
            'journal',
            'tags',
            'custom_fields',
            'created',
            'last_updated',
        )
        brief_fields = ('display', 'id', 'run_id', 'state', 'url')

    def validate_snapshot_hash(self, value):
        if len(value) != 64 or any(c not in '0123456789abcdef' for c in value):
            raise serializers.ValidationError(
                'A sha256 hex digest (64 lowercase hex characters) is required.'
            )
        return value

    def validate(self, data):
        if self.instance is not None:
            if 'root' in data and data['root'].pk != self.instance.root_id:
                raise serializers.ValidationError({'root': ['The root of a run cannot change.']})
            if 'run_id' in data and data['run_id'] != self.instance.run_id:
                raise serializers.ValidationError({'run_id': ['The run id cannot change.']})
            if 'mode' in data and data['mode'] != self.instance.mode:
                raise serializers.ValidationError({'mode': ['The mode of a run cannot change.']})
            if 'fencing_token' not in data:
                raise serializers.ValidationError(
                    {'fencing_token': ['Every write to a run carries the fencing token.']}
                )
            if data.get('gate_decision') is not None:
                if self.instance.gate_decision is not None:
                    raise serializers.ValidationError(
                        {'gate_decision': ['The run was decided already: a decision is written once.']}
                    )
                if self.instance.state != RunStateChoices.AWAITING_APPROVAL or self.instance.awx_job_id:
                    raise serializers.ValidationError(
                        {'gate_decision': ['Only a run the blast-radius gate holds takes a decision.']}
                    )
        if 'log_lines' in data:
            data['log_lines'] = [{**line, 'ts': line['ts'].isoformat()} for line in data['log_lines']]
        # Not a model field: kept out of the model's full_clean(), written by the view (perform_update).
        journal = data.pop('journal', None)
        data = super().validate(data)
        if journal is not None:
            data['journal'] = journal
        return data


class RunWriteSerializer(serializers.ModelSerializer):
    """A lean run write (`POST runs/{run_id}/write/`, docs/decisions/0064): the fields a reconciler changes
    after the run's creation, validated by the model's own field rules, without NetBox's model serializer
    (no custom fields, tags or nested root to read or write, no re-serialised run in the answer)."""

    fencing_token = serializers.IntegerField(min_value=0)
    state = serializers.ChoiceField(choices=RunStateChoices, required=False)
    log_lines = LogLineSerializer(many=True, required=False)
    journal = RunJournalSerializer(required=False)
    member_digests = json_field(validate_member_digests)
    blast_radius = json_field(_shaped(BlastRadiusSerializer))

    class Meta:
        model = ReconciliationRun
        fields = (
            'fencing_token',
            'state',
            'snapshot_hash',
            'member_digests',
            'blast_radius',
            'awx_job_type',
            'awx_job_id',
            'awx_job_url',
            'verify_job_id',
            'outcome_class',
            'summary',
            'log_lines',
            'journal',
        )
        extra_kwargs = {name: {'required': False} for name in fields}

    def validate_snapshot_hash(self, value):
        return ReconciliationRunSerializer.validate_snapshot_hash(self, value)

    def validate(self, data):
        if 'log_lines' in data:
            data['log_lines'] = [{**line, 'ts': line['ts'].isoformat()} for line in data['log_lines']]
        return data


class RunWrittenSerializer(serializers.Serializer):
    """The answer to a lean run write: what the write decided, not the whole run."""

    run_id = serializers.CharField()
    state = serializers.ChoiceField(choices=RunStateChoices)
    finished = serializers.DateTimeField(allow_null=True)


class ChangeSerializer(serializers.Serializer):
    object_type = serializers.RegexField(r'^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$', max_length=100)
    object_id = serializers.IntegerField(min_value=0)
    event = serializers.ChoiceField(choices=('created', 'updated', 'deleted'))
    data = serializers.DictField(allow_null=True, required=False, default=None)
    prechange = serializers.DictField(allow_null=True, required=False, default=None)
    postchange = serializers.DictField(allow_null=True, required=False, default=None)


class ResolveRequestSerializer(serializers.Serializer):
    changes = ChangeSerializer(many=True, allow_empty=True, max_length=500)


class ResolveResultSerializer(serializers.Serializer):
    root_keys = serializers.ListField(child=serializers.CharField())


class ResolveResponseSerializer(serializers.Serializer):
    results = ResolveResultSerializer(many=True)


class LeaseAcquireSerializer(serializers.Serializer):
    holder = serializers.CharField(max_length=200)
    ttl_seconds = serializers.IntegerField(min_value=1, max_value=86400)
    # With the lease, what a reconciler reads next (docs/decisions/0045): one request instead of four.
    context = serializers.BooleanField(required=False, default=False)


class LeaseRenewSerializer(serializers.Serializer):
    token = serializers.IntegerField(min_value=1)
    ttl_seconds = serializers.IntegerField(min_value=1, max_value=86400)


class LeaseReleaseSerializer(serializers.Serializer):
    token = serializers.IntegerField(min_value=1)


class FreezeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class UnfreezeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default='')
