"""The root catalogue: which root kinds exist, what belongs to a root of each kind, and what runs it.

Kinds are declared in PLUGINS_CONFIG['unicop']['root_kinds'] (merged over the built-in `prefix` and
`site`), parsed once by `load_catalogue()` from the plugin's ready() and refused with
ImproperlyConfigured naming the offending field (docs/decisions/0020-plugin-root-catalogue.md).

A kind has an anchor model and member rules. A rule names a member object type and the relation
that binds a member to an anchor:

- `fk`: the member has a foreign key `field` to the anchor (device.site -> site).
- `prefix_contains`: the member is an IP address or IP range inside the anchor prefix, in the same
  VRF (null VRF = global table). An IP inside nested prefixes belongs to every enclosing prefix.

Each relation answers two questions: members_of(anchor) -> queryset (snapshot), and
anchor_ids_for_each(states) -> the anchor ids of each state (resolver), where a state is a plain
dict of fields read from the database, a webhook's `data` (REST shape: nested {id: …}) or a
changelog snapshot (ids). A relation answers for a whole batch of states with a bounded number of
queries (fk: none; prefix_contains: one), never one per state (docs/decisions/0046).
"""

import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
import netaddr
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

DRIFT_MODES = ('off', 'detect', 'remediate')
TEMPLATE_TYPES = ('job', 'workflow')
WEEKDAYS = ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')
WINDOW_KEYS = ('days', 'start', 'end', 'timezone')
_HH_MM = re.compile(r'([01][0-9]|2[0-3]):[0-5][0-9]')

BUILTIN_KINDS = {
    'prefix': {
        'anchor': 'ipam.prefix',
        'members': [
            {'object_type': 'ipam.ipaddress', 'relation': 'prefix_contains'},
            {'object_type': 'ipam.iprange', 'relation': 'prefix_contains'},
        ],
        # Defaults; a deployment overrides these (e.g. the AWX template id) in PLUGINS_CONFIG.
        'awx_template': {'type': 'job', 'id': None},
        'policy': {},
    },
    'site': {
        'anchor': 'dcim.site',
        'members': [
            {'object_type': 'dcim.device', 'relation': 'fk', 'field': 'site'},
            {'object_type': 'dcim.rack', 'relation': 'fk', 'field': 'site'},
            {'object_type': 'ipam.vlan', 'relation': 'fk', 'field': 'site'},
        ],
        'awx_template': {'type': 'job', 'id': None},
        'policy': {},
    },
}

DEFAULT_POLICY = {
    'approval_required': False,  # no approval step unless the kind asks for one
    'change_window': None,  # None: any time; else a list of windows (_parse_change_window)
    'drift_mode': 'detect',  # off | detect | remediate: check runs and what follows drift (decision 0054)
    'drift_interval_seconds': 3600,  # how often the drift scheduler checks an in-sync root (±10 % jitter)
    'run_timeout_seconds': 3600,  # a run still going after an hour is timed_out
    'schema': None,  # None: no check; else a JSON Schema (2020-12) each snapshot passes before launch (0060)
    # None: no verification; else {tags: "<AWX job_tags>"} (the kind's job template again, only those tasks)
    # or {template: <AWX job template id>}: run after a successful apply job; failed → verify_failed (0066)
    'verify': None,
    # None: no limit; else {max_changed_members?: int >= 0, max_changed_share?: 0..1}: an apply run changing
    # more members than that since the root's last reconciled run waits for a person's approval (0065)
    'blast_radius': None,
}


def _ref(value):
    """An id from a foreign key as it appears in REST data ({id: …}), a changelog snapshot or the DB."""
    if isinstance(value, dict):
        value = value.get('id')
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _host(value):
    """netaddr.IPAddress of an address or range bound ('10.0.0.5/24', IPNetwork, IPAddress), or None."""
    if value is None:
        return None
    try:
        if isinstance(value, netaddr.IPAddress):
            return value
        if isinstance(value, netaddr.IPNetwork):
            return value.ip
        return netaddr.IPNetwork(str(value)).ip
    except (netaddr.AddrFormatError, ValueError, TypeError):
        return None


class ForeignKeyRelation:
    name = 'fk'

    def __init__(self, member_model, anchor_model, field_name):
        self.member_model = member_model
        self.field_name = field_name
        try:
            fk = member_model._meta.get_field(field_name)
        except Exception as exc:
            raise ValueError(f'{member_model._meta.label_lower} has no field {field_name!r}') from exc
        if not fk.is_relation or fk.related_model is not anchor_model:
            raise ValueError(
                f'{member_model._meta.label_lower}.{field_name} is not a foreign key to '
                f'{anchor_model._meta.label_lower}'
            )
        self.fields = (field_name,)

    def members_of(self, anchor):
        return self.member_model.objects.filter(**{f'{self.field_name}_id': anchor.pk})

    def anchor_ids_for_each(self, states):
        """The anchor of each state is its foreign key: no query."""
        refs = (_ref(fields.get(self.field_name, fields.get(f'{self.field_name}_id'))) for fields in states)
        return [{ref} if ref is not None else set() for ref in refs]

    def db_fields(self):
        return (f'{self.field_name}_id',)


class PrefixContainsRelation:
    """IP addresses and ranges inside a prefix, same VRF (docs/decisions/0020)."""

    name = 'prefix_contains'

    def __init__(self, member_model, anchor_model):
        if anchor_model._meta.label_lower != 'ipam.prefix':
            raise ValueError('prefix_contains needs the anchor ipam.prefix')
        label = member_model._meta.label_lower
        if label not in ('ipam.ipaddress', 'ipam.iprange'):
            raise ValueError('prefix_contains members are ipam.ipaddress or ipam.iprange')
        self.member_model = member_model
        self.anchor_model = anchor_model
        self.is_range = label == 'ipam.iprange'

    def members_of(self, anchor):
        net = netaddr.IPNetwork(str(anchor.prefix))
        bounds = (
            netaddr.IPAddress(net.first, version=net.version),
            netaddr.IPAddress(net.last, version=net.version),
        )
        if self.is_range:
            return self.member_model.objects.filter(
                vrf_id=anchor.vrf_id, start_address__host_between=bounds, end_address__host_between=bounds
            )
        return self.member_model.objects.filter(vrf_id=anchor.vrf_id, address__host_between=bounds)

    def _span(self, fields):
        """(vrf id, first address, last address) of an address or range, or None without addresses."""
        if self.is_range:
            start, end = _host(fields.get('start_address')), _host(fields.get('end_address'))
        else:
            start = end = _host(fields.get('address'))
        if start is None or end is None:
            return None
        return (_ref(fields.get('vrf', fields.get('vrf_id'))), str(start), str(end))

    def anchor_ids_for_each(self, states):
        """The prefixes of each state's VRF (null: the global table) that contain its address, or both
        bounds of its range: one query for every distinct span of the batch, which the prefixes' GiST
        index (NetBox's ipam_prefix_gist_idx) answers span by span."""
        spans = [self._span(fields) for fields in states]
        distinct = list(dict.fromkeys(span for span in spans if span is not None))
        found = {}
        if distinct:
            # The anchor is ipam.prefix (checked in __init__): NetBox's table ipam_prefix.
            with connection.cursor() as cursor:
                cursor.execute(
                    'SELECT q.i, p.id FROM unnest(%s::integer[], %s::bigint[], %s::inet[], %s::inet[]) '
                    'AS q(i, vrf, first, last) JOIN ipam_prefix p ON p.prefix >>= q.first '
                    'AND p.prefix >>= q.last AND p.vrf_id IS NOT DISTINCT FROM q.vrf',
                    [
                        list(range(len(distinct))),
                        [vrf for vrf, _, _ in distinct],
                        [first for _, first, _ in distinct],
                        [last for _, _, last in distinct],
                    ],
                )
                for i, anchor_id in cursor.fetchall():
                    found.setdefault(distinct[i], set()).add(anchor_id)
        return [set(found.get(span, ())) if span is not None else set() for span in spans]

    def db_fields(self):
        return ('vrf_id', 'start_address', 'end_address') if self.is_range else ('vrf_id', 'address')


RELATIONS = {'fk': ForeignKeyRelation, 'prefix_contains': PrefixContainsRelation}


@dataclass(frozen=True)
class MemberRule:
    object_type: str
    model: type
    relation: object


@dataclass(frozen=True)
class RootKind:
    name: str
    anchor_type: str
    anchor_model: type
    members: tuple
    awx_template: dict = field(default_factory=dict)
    policy: dict = field(default_factory=dict)

    def key_for(self, anchor_id):
        return f'{self.name}/{anchor_id}'


class Catalogue:
    def __init__(self, kinds):
        self.kinds = kinds
        self.by_anchor = {}
        self.by_member = {}
        for kind in kinds.values():
            self.by_anchor.setdefault(kind.anchor_type, []).append(kind)
            for rule in kind.members:
                self.by_member.setdefault(rule.object_type, []).append((kind, rule))

    def __getitem__(self, name):
        return self.kinds[name]

    def covered_types(self):
        """Every object type whose change can touch a root (anchors and members), sorted."""
        return sorted(set(self.by_anchor) | set(self.by_member))


def _model(label, where):
    try:
        return apps.get_model(label)
    except (LookupError, ValueError) as exc:
        raise ImproperlyConfigured(f'PLUGINS_CONFIG unicop: {where}: unknown object type {label!r}') from exc


class InvalidPolicy(ValueError):
    """A policy (a kind's in PLUGINS_CONFIG, or a root's `unicop_policy` override) that cannot be run:
    `key` is the policy key at fault, the message says where and why."""

    def __init__(self, key, message):
        super().__init__(message)
        self.key = key


def parse_policy(policy, where):
    """The policy `policy` (every key of DEFAULT_POLICY present) checked and normalised, or InvalidPolicy
    naming the key. The one validator of a policy: a kind's (_parse_kind) and a root's merged override
    (root_policy) alike; `where` prefixes the message (root_kinds.site.policy, site/7 unicop_policy)."""
    unknown = set(policy) - set(DEFAULT_POLICY)
    if unknown:
        raise InvalidPolicy(sorted(unknown)[0], f'{where}: unknown keys {sorted(unknown)}')
    if policy['drift_mode'] not in DRIFT_MODES:
        raise InvalidPolicy('drift_mode', f'{where}.drift_mode must be one of {DRIFT_MODES}')
    if not isinstance(policy['approval_required'], bool):
        raise InvalidPolicy('approval_required', f'{where}.approval_required must be a boolean')
    timeout = policy['run_timeout_seconds']
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout <= 0:
        raise InvalidPolicy('run_timeout_seconds', f'{where}.run_timeout_seconds must be a positive integer')
    interval = policy['drift_interval_seconds']
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 60:
        raise InvalidPolicy(
            'drift_interval_seconds', f'{where}.drift_interval_seconds must be an integer of at least 60'
        )
    _check_snapshot_schema(policy['schema'], f'{where}.schema')
    _check_verify(policy['verify'], f'{where}.verify')
    _check_blast_radius(policy['blast_radius'], f'{where}.blast_radius')
    windows = _parse_change_window(policy['change_window'], f'{where}.change_window')
    return {**policy, 'change_window': windows}


def _parse_change_window(value, where):
    """None (any time), or the windows in which a run may start, normalised: a single window becomes a
    one-element list, `days` lists the week's days in week order (default: all seven) and `timezone` is
    named (default UTC). A window whose end is earlier than its start crosses midnight and belongs to
    the day it starts on (fri 22:00-02:00 is Friday night)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return [_parse_window(value, where)]
    if not isinstance(value, list) or not value:
        raise InvalidPolicy('change_window', f'{where} must be None, a window or a non-empty list of windows')
    return [_parse_window(window, f'{where}[{i}]') for i, window in enumerate(value)]


def _parse_window(window, where):
    if not isinstance(window, dict):
        raise InvalidPolicy('change_window', f'{where} must be a dict {{days?, start, end, timezone?}}')
    unknown = set(window) - set(WINDOW_KEYS)
    if unknown:
        raise InvalidPolicy('change_window', f'{where}: unknown keys {sorted(unknown)}')
    days = window.get('days')
    if days is None:
        days = WEEKDAYS  # no days given: every day of the week
    if not isinstance(days, (list, tuple)) or not days or any(day not in WEEKDAYS for day in days):
        raise InvalidPolicy('change_window', f'{where}.days must be a non-empty list of {list(WEEKDAYS)}')
    for bound in ('start', 'end'):
        if not isinstance(window.get(bound), str) or not _HH_MM.fullmatch(window[bound]):
            raise InvalidPolicy(
                'change_window', f'{where}.{bound} must be a time "HH:MM" from 00:00 to 23:59'
            )
    if window['start'] == window['end']:
        raise InvalidPolicy(
            'change_window',
            f'{where}.end equals start ({window["start"]}): a window is never empty '
            'nor the whole day (an end earlier than the start crosses midnight)'
        )
    tz = window.get('timezone')
    if tz is None:
        tz = 'UTC'  # no time zone given: the times are UTC
    try:
        if not isinstance(tz, str) or not tz:
            raise ValueError(tz)
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidPolicy(
            'change_window',
            f'{where}.timezone must be an IANA time zone name '
            f'(e.g. "Europe/Paris"), not {tz!r}'
        ) from exc
    return {
        'days': [day for day in WEEKDAYS if day in days],
        'start': window['start'],
        'end': window['end'],
        'timezone': tz,
    }


BLAST_RADIUS_KEYS = ('max_changed_members', 'max_changed_share')


def _check_blast_radius(limit, where):
    """A blast-radius limit (docs/decisions/0065): None, or an object with at least one of
    `max_changed_members` (an integer >= 0) and `max_changed_share` (a number from 0 to 1)."""
    if limit is None:
        return
    if not isinstance(limit, dict) or not limit:
        raise InvalidPolicy(
            'blast_radius', f'{where} must be None or an object with {" and/or ".join(BLAST_RADIUS_KEYS)}'
        )
    unknown = sorted(set(limit) - set(BLAST_RADIUS_KEYS))
    if unknown:
        raise InvalidPolicy('blast_radius', f'{where}: unknown keys {unknown}')
    members = limit.get('max_changed_members')
    if members is not None and (isinstance(members, bool) or not isinstance(members, int) or members < 0):
        raise InvalidPolicy('blast_radius', f'{where}.max_changed_members must be an integer of at least 0')
    share = limit.get('max_changed_share')
    if share is not None and (
        isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1
    ):
        raise InvalidPolicy('blast_radius', f'{where}.max_changed_share must be a number from 0 to 1')
    if members is None and share is None:
        raise InvalidPolicy(
            'blast_radius', f'{where} names no limit: give {" and/or ".join(BLAST_RADIUS_KEYS)}'
        )


VERIFY_TAGS_MAX = 1024


def _check_verify(verify, where):
    """The post-run verification (docs/decisions/0066): None, or exactly one of `tags` (AWX job_tags: a
    non-empty string of comma-separated tags, no blanks, at most 1024 characters) and `template` (an AWX job
    template id, a positive integer)."""
    if verify is None:
        return
    if not isinstance(verify, dict) or len(verify) != 1 or not set(verify) <= {'tags', 'template'}:
        raise InvalidPolicy(
            'verify', f'{where} must be None, {{"tags": "<job tags>"}} or {{"template": <job template id>}}'
        )
    if 'tags' in verify:
        tags = verify['tags']
        if (
            not isinstance(tags, str)
            or not tags
            or len(tags) > VERIFY_TAGS_MAX
            or any(not t or t != t.strip() or ' ' in t for t in tags.split(','))
        ):
            raise InvalidPolicy(
                'verify',
                f'{where}.tags must be AWX job tags: comma-separated names without blanks, '
                f'at most {VERIFY_TAGS_MAX} characters',
            )
        return
    template = verify['template']
    if isinstance(template, bool) or not isinstance(template, int) or template <= 0:
        raise InvalidPolicy('verify', f'{where}.template must be an AWX job template id (a positive integer)')


def _check_snapshot_schema(schema, where):
    """None, or an inline JSON Schema (draft 2020-12, the dialect the workers validate snapshots with,
    decision 0060) that is itself valid: a typo in it would refuse every run of the kind, or none."""
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise InvalidPolicy('schema', f'{where} must be None or a JSON Schema object')
    draft = jsonschema.Draft202012Validator.META_SCHEMA['$id']
    if schema.get('$schema', draft) != draft:
        found = schema['$schema']
        raise InvalidPolicy('schema', f'{where}.$schema must be absent or {draft!r}, not {found!r}')
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = '/'.join(str(part) for part in exc.absolute_path) or '(top)'
        raise InvalidPolicy('schema', f'{where} is not a valid JSON Schema at {at}: {exc.message}') from exc


def _parse_kind(name, spec):
    where = f'root_kinds.{name}'
    if not isinstance(spec, dict):
        raise ImproperlyConfigured(f'PLUGINS_CONFIG unicop: {where} must be a dict')
    if not name or '/' in name:
        raise ImproperlyConfigured(f'PLUGINS_CONFIG unicop: {where}: a kind name is non-empty and has no "/"')
    anchor_label = spec.get('anchor')
    if not isinstance(anchor_label, str):
        raise ImproperlyConfigured(f'PLUGINS_CONFIG unicop: {where}.anchor must be "app_label.model"')
    anchor_model = _model(anchor_label.lower(), f'{where}.anchor')
    rules = []
    for i, m in enumerate(spec.get('members') or []):
        mwhere = f'{where}.members[{i}]'
        if not isinstance(m, dict) or not isinstance(m.get('object_type'), str):
            raise ImproperlyConfigured(
                f'PLUGINS_CONFIG unicop: {mwhere}.object_type must be "app_label.model"'
            )
        member_model = _model(m['object_type'].lower(), f'{mwhere}.object_type')
        relation_cls = RELATIONS.get(m.get('relation'))
        if relation_cls is None:
            raise ImproperlyConfigured(
                f'PLUGINS_CONFIG unicop: {mwhere}.relation must be one of {sorted(RELATIONS)}'
            )
        try:
            if relation_cls is ForeignKeyRelation:
                if not isinstance(m.get('field'), str):
                    raise ValueError('field (the foreign key to the anchor) is required')
                relation = relation_cls(member_model, anchor_model, m['field'])
            else:
                relation = relation_cls(member_model, anchor_model)
        except ValueError as exc:
            raise ImproperlyConfigured(f'PLUGINS_CONFIG unicop: {mwhere}: {exc}') from exc
        rules.append(MemberRule(member_model._meta.label_lower, member_model, relation))
    template = dict(spec.get('awx_template') or {'type': 'job', 'id': None})
    if template.get('type') not in TEMPLATE_TYPES:
        raise ImproperlyConfigured(
            f'PLUGINS_CONFIG unicop: {where}.awx_template.type must be one of {TEMPLATE_TYPES}'
        )
    if template.get('id') is not None and (
        isinstance(template['id'], bool) or not isinstance(template['id'], int)
    ):
        raise ImproperlyConfigured(
            f'PLUGINS_CONFIG unicop: {where}.awx_template.id must be an integer or None'
        )
    try:
        policy = parse_policy({**DEFAULT_POLICY, **(spec.get('policy') or {})}, f'{where}.policy')
    except InvalidPolicy as exc:
        raise ImproperlyConfigured(f'PLUGINS_CONFIG unicop: {exc}') from exc
    return RootKind(name, anchor_model._meta.label_lower, anchor_model, tuple(rules), template, policy)


def parse_catalogue(root_kinds):
    """Built-in kinds overlaid with the configured ones (a configured kind replaces keys of a built-in one;
    `None` removes a built-in kind)."""
    if not isinstance(root_kinds, dict):
        raise ImproperlyConfigured('PLUGINS_CONFIG unicop: root_kinds must be a dict of kind name -> spec')
    merged = {}
    for name, spec in {**BUILTIN_KINDS, **root_kinds}.items():
        if spec is None:
            continue
        base = BUILTIN_KINDS.get(name, {})
        merged[name] = _parse_kind(name, {**base, **spec} if isinstance(spec, dict) else spec)
    return Catalogue(merged)


_catalogue = None


def load_catalogue(settings_dict=None):
    global _catalogue
    if settings_dict is None:
        from netbox.plugins import get_plugin_config

        settings_dict = get_plugin_config('unicop', 'root_kinds') or {}
    _catalogue = parse_catalogue(settings_dict)
    return _catalogue


def catalogue():
    return _catalogue if _catalogue is not None else load_catalogue()
