"""The global freeze as NetBox knows it (docs/decisions/0062): a mirror of the latest global record on
`unicop.control`, which NetBox cannot read (Kafka). The bridge — which follows that topic and serves the
admin API's freeze and resume — puts the record here whenever its view changes, once after each replay
and every minute. The last put is kept, whatever its `at`: the bridge's view applies the topic's records
in the topic's order, so its latest put is the topic's latest record. Ordering by `at` (the writer's
clock) let a fail-safe freeze written by a worker whose clock is behind the resume's be refused as
"older" for good, and a put with a future `at` pin the record. Kept in NetBox's cache (Redis) with no
expiry, under a key per database: the bridge puts it again if the cache loses it. Shown as a banner on
every NetBox page (template_content.GlobalFreezeBanner)."""

from django.core.cache import cache
from django.db import connection


def _key():
    return f'unicop:global_freeze:{connection.settings_dict["NAME"]}'


def current():
    """The latest global record ({frozen, actor, reason, at}, `at` an aware datetime), or None."""
    return cache.get(_key())


def record(state):
    """Keeps `state`, the bridge's latest global record (one cache write: no read-then-set); returns it."""
    cache.set(_key(), dict(state), timeout=None)
    return dict(state)
