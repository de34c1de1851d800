"""gunicorn settings of the netbox-unicop image (`web`): NetBox's contrib/gunicorn.py values, bound
to every address of the container (compose publishes the port on 127.0.0.1 only), access log on
stdout."""

import os

bind = f'0.0.0.0:{os.environ.get("NETBOX_PORT", "8080")}'
workers = int(os.environ.get('NETBOX_GUNICORN_WORKERS', '3'))
threads = int(os.environ.get('NETBOX_GUNICORN_THREADS', '3'))
timeout = 120
max_requests = 5000
max_requests_jitter = 500
accesslog = '-' if os.environ.get('NETBOX_ACCESS_LOG', 'false') == 'true' else None
errorlog = '-'
# gunicorn's control socket would go into the working directory (/opt/netbox, read-only to the
# netbox user); nothing uses it here.
control_socket_disable = True
