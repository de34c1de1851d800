"""A root's policy override may only tighten its kind's governance (docs/decisions/0068, review B #6).

A root's `unicop_policy` override (docs/decisions/0062) is checked by the kind's validator
(catalogue.parse_policy) and then, key by key, by the rule OVERRIDE_RULES names for it: the rule says
which value is in force and whether the override may set it at all. An override that would loosen the
kind — turn its approval off, remove or widen its change window, drop its schema, raise its blast
radius — is refused like any bad override: the root serves `policy: null` and a `policy_error` naming the
key, and the workers refuse its runs before AWX (template_misconfigured, audited as run.failed).

A key with no rule may not be overridden at all (refused, naming the key): a policy key added later is
safe until someone decides how a root may change it, here. The operator may let overrides loosen named
keys with PLUGINS_CONFIG['unicop']['override_may_loosen'] (a list of policy keys, default none).

The served policy says which keys the override set, under `overridden` ({key: 'override'} when the
root's value replaced the kind's, 'kind+override' when both apply): the root's page and the validation
gate's refusals name where a schema came from (review B #10).
"""

from django.core.exceptions import ImproperlyConfigured

from .catalogue import DEFAULT_POLICY, InvalidPolicy, _check_snapshot_schema, parse_policy

REPLACED = 'override'  # the root's value is in force instead of the kind's
COMBINED = 'kind+override'  # the kind's value and the root's both apply (a schema: allOf both)

_TIGHTEN_ONLY = "an override may only tighten its kind's policy (docs/decisions/0068)"


def _free(kind_value, value, where):
    """Any valid value: the key is a choice of how to run the root, not a gate on its changes."""
    return value, REPLACED


def _approval(kind_value, value, where):
    """Approval may be turned on, never off where the kind requires it."""
    if kind_value and not value:
        raise InvalidPolicy(
            'approval_required', f'{where} cannot be false: its kind requires approval; {_TIGHTEN_ONLY}'
        )
    return value, REPLACED


_WEEK = 7 * 24 * 60
_DAY_INDEX = {'mon': 0, 'tue': 1, 'wed': 2, 'thu': 3, 'fri': 4, 'sat': 5, 'sun': 6}


def _minutes(hh_mm):
    hours, minutes = hh_mm.split(':')
    return int(hours) * 60 + int(minutes)


def _spans(window):
    """The minutes of the week (local time, 0 = Monday 00:00) a normalised window covers, as half-open
    spans; a window crossing midnight belongs to the day it starts on, Sunday's runs into Monday."""
    start, end = _minutes(window['start']), _minutes(window['end'])
    length = end - start if end > start else end + 24 * 60 - start
    spans = []
    for day in window['days']:
        first = _DAY_INDEX[day] * 24 * 60 + start
        last = first + length
        if last <= _WEEK:
            spans.append((first, last))
        else:
            spans.extend([(first, _WEEK), (0, last - _WEEK)])
    return spans


def _covered(span, spans):
    """Whether the union of `spans` covers `span` entirely."""
    at, end = span
    for first, last in sorted(spans):
        if first > at:
            break
        at = max(at, last)
        if at >= end:
            return True
    return at >= end


def _change_window(kind_value, value, where):
    """A window may be added where the kind has none, or narrowed: each of the override's windows inside
    the kind's windows of the same time zone (compared in that zone's local time, so summer time moves
    both alike). Removing the kind's window (null) is loosening."""
    if kind_value is None:
        return value, REPLACED
    if value is None:
        raise InvalidPolicy(
            'change_window', f'{where} cannot be null: its kind has a change window; {_TIGHTEN_ONLY}'
        )
    for i, window in enumerate(value):
        zone = window['timezone']
        same_zone = [
            span
            for kind_window in kind_value
            if kind_window['timezone'] == zone
            for span in _spans(kind_window)
        ]
        if not same_zone:
            zones = sorted({kind_window['timezone'] for kind_window in kind_value})
            raise InvalidPolicy(
                'change_window',
                f"{where}[{i}].timezone must be one of its kind's window time zones {zones}, not {zone!r}: "
                "a narrowed window is compared with the kind's in the same zone",
            )
        if not all(_covered(span, same_zone) for span in _spans(window)):
            raise InvalidPolicy(
                'change_window',
                f'{where}[{i}] ({",".join(window["days"])} {window["start"]}-{window["end"]} {zone}) '
                f"is not inside its kind's change window; {_TIGHTEN_ONLY}",
            )
    return value, REPLACED


# The `$id`s the kind's and the root's schemas get when both apply and a schema has none: each becomes
# its own resource, so a `$ref` to "#/$defs/…" inside it still resolves against it, not the combination.
_SCHEMA_IDS = ('urn:unicop:policy-schema:kind', 'urn:unicop:policy-schema:root-override')


def _schema(kind_value, value, where):
    """A schema may be added where the kind has none; where it has one, both apply (allOf); removing it
    (null) is loosening."""
    if kind_value is None:
        return value, REPLACED
    if value is None:
        raise InvalidPolicy('schema', f'{where} cannot be null: its kind has a schema; {_TIGHTEN_ONLY}')
    if value == kind_value:
        return kind_value, None
    if value.get('$id') is not None and value.get('$id') == kind_value.get('$id'):
        raise InvalidPolicy(
            'schema', f"{where}.$id is its kind's schema's ({value['$id']!r}): both apply, give it another"
        )
    parts = [
        {'$id': default_id, **{k: v for k, v in part.items() if k != '$schema'}}
        for default_id, part in zip(_SCHEMA_IDS, (kind_value, value), strict=True)
    ]
    combined = {'$schema': 'https://json-schema.org/draft/2020-12/schema', 'allOf': parts}
    _check_snapshot_schema(combined, where)
    return combined, COMBINED


def _blast_radius(kind_value, value, where):
    """A limit may be added where the kind has none, or lowered: each limit the kind sets stays, at most as
    high (docs/decisions/0065's max_changed_members, max_changed_share); removing it (null) is loosening."""
    if kind_value is None:
        return value, REPLACED
    if value is None:
        raise InvalidPolicy('blast_radius', f'{where} cannot be null: its kind has a limit; {_TIGHTEN_ONLY}')
    for limit, kind_limit in sorted(kind_value.items()):
        if kind_limit is None:
            continue
        if value.get(limit) is None:
            raise InvalidPolicy(
                'blast_radius',
                f"{where}.{limit} cannot be left out: its kind's is {kind_limit}; {_TIGHTEN_ONLY}",
            )
        if value[limit] > kind_limit:
            raise InvalidPolicy(
                'blast_radius',
                f"{where}.{limit} ({value[limit]}) is above its kind's ({kind_limit}); {_TIGHTEN_ONLY}",
            )
    return value, REPLACED


def _add_only(kind_value, value, where):
    """A setting may be added where the kind has none; where it has one, the override may only restate it
    (a post-run verification, decision 0066: the root cannot drop or swap the kind's check)."""
    if kind_value is None:
        return value, REPLACED
    if value != kind_value:
        key = where.rsplit('.', 1)[-1]
        raise InvalidPolicy(key, f"{where} cannot differ from its kind's ({kind_value}); {_TIGHTEN_ONLY}")
    return kind_value, None


# How a root's override may change each key of its kind's policy: (kind's value, override's value — both
# checked and normalised by parse_policy —, where) -> (the value in force, REPLACED | COMBINED | None for
# the kind's), or InvalidPolicy naming the key when it would loosen. A key missing here cannot be
# overridden (the other helpers' keys: add their rule here; tests/test_policy_overrides checks each key).
OVERRIDE_RULES = {
    'approval_required': _approval,
    'change_window': _change_window,
    'schema': _schema,
    'blast_radius': _blast_radius,
    'verify': _add_only,
    # What drift runs do and how often a run may take: how the root is run, not whether a change may
    # run — a lab site may turn drift checks off, a slow site take longer (decision 0068).
    'drift_mode': _free,
    'drift_interval_seconds': _free,
    'run_timeout_seconds': _free,
}


def parse_may_loosen(value):
    """PLUGINS_CONFIG['unicop']['override_may_loosen']: the policy keys an override may loosen, checked."""
    if value is None:
        return frozenset()
    if not isinstance(value, (list, tuple)) or any(not isinstance(key, str) for key in value):
        raise ImproperlyConfigured('PLUGINS_CONFIG unicop: override_may_loosen must be a list of policy keys')
    unknown = sorted(set(value) - set(DEFAULT_POLICY))
    if unknown:
        raise ImproperlyConfigured(
            f'PLUGINS_CONFIG unicop: override_may_loosen: unknown policy keys {unknown} '
            f'(known: {sorted(DEFAULT_POLICY)})'
        )
    return frozenset(value)


def may_loosen():
    """The keys the deployment lets an override loosen (read per call: tests change the setting)."""
    from netbox.plugins import get_plugin_config

    return parse_may_loosen(get_plugin_config('unicop', 'override_may_loosen'))


def merge_override(kind_policy, override, where, loosen=frozenset()):
    """A root's policy: `override` (a dict of policy keys) over its kind's parsed policy, validated by
    parse_policy and then by each key's rule (OVERRIDE_RULES; a key in `loosen` takes the override's value
    unchecked). The served policy carries `overridden`: {key: REPLACED | COMBINED} for the keys in force
    from the override. Raises InvalidPolicy naming the key."""
    policy = parse_policy({**kind_policy, **override}, where)
    overridden = {}
    for key in sorted(override):
        if key in loosen:
            value, origin = policy[key], REPLACED
        else:
            rule = OVERRIDE_RULES.get(key)
            if rule is None:
                raise InvalidPolicy(
                    key, f'{where}.{key} cannot be set per root: no override rule for it (decision 0068)'
                )
            value, origin = rule(kind_policy[key], policy[key], f'{where}.{key}')
        policy[key] = value
        if origin is not None:
            overridden[key] = origin
    return {**policy, 'overridden': overridden}
