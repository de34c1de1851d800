"""NetBox configuration of the netbox-unicop image: everything from the environment, secrets from
files (compose `secrets:` mount them under /run/secrets/), nothing secret baked into the image.

Required: NETBOX_SECRET_KEY_FILE, NETBOX_API_TOKEN_PEPPER_FILE, NETBOX_DB_PASSWORD_FILE (and the
hosts below when they are not the compose service names). The plugin's root catalogue is the JSON
file named by UNICOP_PLUGIN_CONFIG_FILE ({"root_kinds": {...}}, see netbox-plugin/README.md).
"""

import json
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def _env(name, default=None):
    value = os.environ.get(name, '').strip()
    return value or default


def _secret(name):
    """The first line of the file named by NAME_FILE; the image build (collectstatic) passes a
    throwaway SECRET_KEY through NETBOX_SECRET_KEY_BUILD instead."""
    path = _env(f'{name}_FILE')
    if not path:
        raise ImproperlyConfigured(f'{name}_FILE is not set (a file holding {name})')
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ImproperlyConfigured(f'{name}_FILE: cannot read {path} ({exc.__class__.__name__})') from None
    if not lines or not lines[0].strip():
        raise ImproperlyConfigured(f'{name}_FILE: {path} is empty')
    return lines[0].strip()


_building = bool(_env('NETBOX_SECRET_KEY_BUILD'))

ALLOWED_HOSTS = _env('NETBOX_ALLOWED_HOSTS', 'localhost 127.0.0.1').replace(',', ' ').split()

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'HOST': _env('NETBOX_DB_HOST', 'postgres'),
        'PORT': _env('NETBOX_DB_PORT', '5432'),
        'NAME': _env('NETBOX_DB_NAME', 'netbox'),
        'USER': _env('NETBOX_DB_USER', 'netbox'),
        'PASSWORD': '' if _building else _secret('NETBOX_DB_PASSWORD'),
        'CONN_MAX_AGE': int(_env('NETBOX_DB_CONN_MAX_AGE', '300')),
    }
}


def _redis(db_variable, default_db):
    return {
        'HOST': _env('NETBOX_REDIS_HOST', 'redis'),
        'PORT': int(_env('NETBOX_REDIS_PORT', '6379')),
        'USERNAME': '',
        'PASSWORD': _secret('NETBOX_REDIS_PASSWORD') if _env('NETBOX_REDIS_PASSWORD_FILE') else '',
        'DATABASE': int(_env(db_variable, default_db)),
        'SSL': False,
    }


# Redis databases 0/1 are left to UNICOP (BullMQ, de-duplication), as on the local stack.
REDIS = {
    'tasks': _redis('NETBOX_REDIS_TASKS_DB', '2'),
    'caching': _redis('NETBOX_REDIS_CACHING_DB', '3'),
}

SECRET_KEY = _env('NETBOX_SECRET_KEY_BUILD') if _building else _secret('NETBOX_SECRET_KEY')
# v2 API tokens (nbt_<key>.<token>) are hashed with this pepper; NetBox refuses them without one.
API_TOKEN_PEPPERS = (
    {1: 'build-only-pepper-' + 'x' * 40} if _building else {1: _secret('NETBOX_API_TOKEN_PEPPER')}
)

TIME_ZONE = _env('NETBOX_TIME_ZONE', 'UTC')

PLUGINS = ['unicop']
_plugin_config_file = _env('UNICOP_PLUGIN_CONFIG_FILE')
if _plugin_config_file:
    try:
        PLUGINS_CONFIG = {'unicop': json.loads(Path(_plugin_config_file).read_text())}
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(f'UNICOP_PLUGIN_CONFIG_FILE {_plugin_config_file}: {exc}') from None
else:
    PLUGINS_CONFIG = {}

# Webhooks NetBox could not deliver are retried (RQ) instead of dropped; the sweeper covers the rest.
# The same defaults as the local stack (scripts/stack.d/netbox.sh, docs/decisions/0036): 10 retries,
# the n-th RQ_RETRY_INTERVAL[n] seconds after the failure before it, ~6 minutes in all.
# NETBOX_RQ_RETRY_INTERVAL: seconds, comma-separated, one value per retry (RQ pads a shorter list at
# the front with its first value).
RQ_RETRY_MAX = int(_env('NETBOX_RQ_RETRY_MAX', '10'))
RQ_RETRY_INTERVAL = [
    int(s) for s in _env('NETBOX_RQ_RETRY_INTERVAL', '1,2,5,10,20,30,60,60,60,120').split(',') if s.strip()
]

LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'handlers': {'console': {'class': 'logging.StreamHandler'}},
    'root': {'handlers': ['console'], 'level': _env('NETBOX_LOG_LEVEL', 'INFO')},
}
