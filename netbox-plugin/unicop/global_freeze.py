"""The global freeze as NetBox knows it (docs/decisions/0062): a mirror of the latest global record on
`unicop.control`, which NetBox cannot read (Kafka). The bridge — which follows that topic and serves the
admin API's freeze and resume — puts the record here whenever its view changes, once after each replay
and every minute; the newest record (by its `at`) is kept, so a late or repeated put never rolls it
back. Kept in NetBox's cache (Redis) with no expiry, under a key per database: the bridge puts it again
if the cache loses it. Shown as a banner on every NetBox page (template_content.GlobalFreezeBanner)."""

from django.core.cache import cache
from django.db import connection


def _key():
    return f'unicop:global_freeze:{connection.settings_dict["NAME"]}'


def current():
    """The latest global record ({frozen, actor, reason, at}, `at` an aware datetime), or None."""
    return cache.get(_key())


def record(state):
    """Keeps `state` unless the record held is newer; returns the record held afterwards."""
    held = current()
    if held is None or state['at'] >= held['at']:
        cache.set(_key(), dict(state), timeout=None)
        return dict(state)
    return held
