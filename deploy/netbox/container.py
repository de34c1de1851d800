"""Helpers of the netbox-unicop image's entrypoint that need no Django start-up (milliseconds, not
seconds): waiting for PostgreSQL and Redis, and the HEALTHCHECK.

    python /opt/netbox/container.py wait-services [SECONDS]   PostgreSQL and Redis accept us
    python /opt/netbox/container.py healthcheck               web: /api/status/ answers;
                                                              rqworker: this container's worker is
                                                              registered in Redis;
                                                              hashes: PostgreSQL answers it
"""

import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def env(name, default=None):
    return os.environ.get(name, '').strip() or default


def secret(name):
    path = env(f'{name}_FILE')
    return Path(path).read_text().splitlines()[0].strip() if path else ''


def redis_connection():
    from redis import Redis

    return Redis(
        host=env('NETBOX_REDIS_HOST', 'redis'),
        port=int(env('NETBOX_REDIS_PORT', '6379')),
        password=secret('NETBOX_REDIS_PASSWORD') or None,
        db=int(env('NETBOX_REDIS_TASKS_DB', '2')),
        socket_connect_timeout=3,
        socket_timeout=3,
    )


def postgres_ready():
    import psycopg

    with psycopg.connect(
        host=env('NETBOX_DB_HOST', 'postgres'),
        port=env('NETBOX_DB_PORT', '5432'),
        dbname=env('NETBOX_DB_NAME', 'netbox'),
        user=env('NETBOX_DB_USER', 'netbox'),
        password=secret('NETBOX_DB_PASSWORD'),
        connect_timeout=3,
    ) as conn:
        conn.execute('SELECT 1')


def wait_services(seconds):
    deadline = time.monotonic() + seconds
    last_log = 0.0
    checks = {'postgres': postgres_ready, 'redis': lambda: redis_connection().ping()}
    while True:
        waiting = {}
        for name, check in checks.items():
            try:
                check()
            except Exception as exc:
                waiting[name] = exc.__class__.__name__
        if not waiting:
            return 0
        now = time.monotonic()
        if now >= deadline:
            print(f'netbox-unicop: gave up waiting for {waiting}', file=sys.stderr)
            return 1
        if now - last_log >= 10:
            print(f'netbox-unicop: waiting for {", ".join(waiting)}', file=sys.stderr)
            last_log = now
        time.sleep(1)


def pid1_role():
    try:
        words = Path('/proc/1/cmdline').read_bytes().split(b'\0')
    except OSError:
        return 'web'
    if any(b'rqworker' in w for w in words):
        return 'rqworker'
    if any(b'unicop_hashes' in w for w in words):
        return 'hashes'
    if b'bootstrap' in words:
        return 'other'
    # gunicorn, or the entrypoint still migrating before it starts gunicorn: not healthy until
    # the API answers.
    return 'web'


def healthcheck():
    role = pid1_role()
    if role == 'rqworker':
        from rq import Worker

        mine = [w for w in Worker.all(connection=redis_connection()) if w.hostname == socket.gethostname()]
        print(f'rqworker: {len(mine)} worker(s) of this container registered')
        return 0 if mine else 1
    if role == 'hashes':
        # The process exits on anything but a database it cannot reach, which it waits out: healthy
        # while it is alive (pid 1) and can reach the database its work is in.
        try:
            postgres_ready()
        except Exception as exc:  # any failure to connect is "not healthy"
            print(f'hashes: PostgreSQL: {exc}')
            return 1
        print('hashes: PostgreSQL answers')
        return 0
    if role == 'other':
        return 0  # the one-shot bootstrap, or a management command
    url = f'http://127.0.0.1:{env("NETBOX_PORT", "8080")}/api/status/'
    try:
        status = urllib.request.urlopen(url, timeout=8).status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f'web: {url}: {exc}')
        return 1
    print(f'web: {url}: {status}')
    return 0 if status in (200, 401, 403) else 1


if __name__ == '__main__':
    command = sys.argv[1] if len(sys.argv) > 1 else ''
    if command == 'wait-services':
        sys.exit(wait_services(int(sys.argv[2]) if len(sys.argv) > 2 else 300))
    if command == 'healthcheck':
        sys.exit(healthcheck())
    print(__doc__, file=sys.stderr)
    sys.exit(2)
