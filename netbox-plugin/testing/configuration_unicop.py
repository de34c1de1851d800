"""NetBox configuration for the UNICOP plugin's test suite.

Selected with NETBOX_CONFIGURATION=configuration_unicop (this directory on PYTHONPATH); see
scripts/test-plugin. It lists only our plugin (NetBox's own configuration_testing.py hard-codes its
dummy plugins) and points at the local stack's PostgreSQL and Redis. Connection facts come from the
environment (the keys scripts/stack writes to var/stack.env). The test runner creates (or, with
--keepdb, reuses) the database named by UNICOP_PLUGIN_TEST_DB, never the stack's own `netbox`.

The SECRET_KEY and pepper below are fixed, public test values: nothing here may be used outside tests.
"""

import os


def _env(name, default):
    return os.environ.get(name) or default


ALLOWED_HOSTS = ['*']

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': _env('UNICOP_PG_DATABASE', 'netbox'),
        'USER': _env('UNICOP_PG_USER', 'netbox'),
        'PASSWORD': _env('UNICOP_PG_PASSWORD', ''),
        'HOST': _env('UNICOP_PG_HOST', '127.0.0.1'),
        'PORT': _env('UNICOP_PG_PORT', '15432'),
        'CONN_MAX_AGE': 300,
        'TEST': {
            'NAME': _env('UNICOP_PLUGIN_TEST_DB', 'test_unicop'),
        },
    }
}

PLUGINS = ['unicop']
PLUGINS_CONFIG = {'unicop': {}}

# Jobs enqueued by a test run in the test's own transaction and are not left in Redis.
RQ = {
    'COMMIT_MODE': 'auto',
}

# Redis databases 4/5: apart from the running NetBox (2/3) and the bridge/workers (0/1).
_REDIS_HOST = _env('UNICOP_REDIS_HOST', '127.0.0.1')
_REDIS_PORT = int(_env('UNICOP_REDIS_PORT', '16379'))
REDIS = {
    'tasks': {
        'HOST': _REDIS_HOST,
        'PORT': _REDIS_PORT,
        'USERNAME': '',
        'PASSWORD': '',
        'DATABASE': int(_env('UNICOP_PLUGIN_TEST_REDIS_DB_TASKS', '4')),
        'SSL': False,
    },
    'caching': {
        'HOST': _REDIS_HOST,
        'PORT': _REDIS_PORT,
        'USERNAME': '',
        'PASSWORD': '',
        'DATABASE': int(_env('UNICOP_PLUGIN_TEST_REDIS_DB_CACHING', '5')),
        'SSL': False,
    },
}

SECRET_KEY = 'unicop-plugin-tests-only-0123456789-abcdefghijklmnopqrstuvwxyz'  # noqa: S105 -- a fixed key for the throwaway test database only

API_TOKEN_PEPPERS = {
    1: 'unicop-plugin-tests-only-pepper-0123456789-abcdefghijklmnopqrstuvwxyz',
}

DEFAULT_PERMISSIONS = {}

TIME_ZONE = 'UTC'

LOGGING = {
    'version': 1,
    'disable_existing_loggers': True,
}
