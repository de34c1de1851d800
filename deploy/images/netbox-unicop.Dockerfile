# syntax=docker/dockerfile:1
# The `netbox-unicop` image: NetBox 4.7 from PyPI on Debian trixie's Python 3.13 with the UNICOP
# plugin installed from its wheel. One image, three commands (deploy/netbox/entrypoint.sh):
#   web        migrations (`netbox upgrade`, static files are already collected), then gunicorn on
#              0.0.0.0:8080 serving /static/ too (WhiteNoise wraps NetBox's WSGI application)
#   rqworker   NetBox's RQ worker (delivers the webhooks), once the database is migrated
#   bootstrap  one-shot: the admin and `unicop` users, the `unicop` API token from its secret file,
#              and the plugin's `unicop_bootstrap` (webhook + event rule to the bridge)
# Configuration comes from the environment and secret files (deploy/netbox/configuration.py).
# Build from the repository root: docker build -f deploy/images/netbox-unicop.Dockerfile .
ARG DEBIAN_IMAGE=docker.io/library/debian:trixie-slim

FROM ${DEBIAN_IMAGE} AS python
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3.13 python3.13-venv libpq5 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/opt/netbox/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NETBOX_ROOT=/opt/netbox PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore

FROM python AS build
# A TLS-intercepting proxy's CA, when the build mounts one at /run/build-ca (pip uses the system
# store); this stage is never shipped.
RUN if ls /run/build-ca/*.crt >/dev/null 2>&1; then \
      cp /run/build-ca/*.crt /usr/local/share/ca-certificates/ && update-ca-certificates; fi
ARG NETBOX_VERSION=4.7.3
ARG WHITENOISE_VERSION=6.12.0
# NetBox pins psycopg[c,pool] (a C build); the same psycopg as psycopg[binary,pool] is the same API
# without a compiler in the image. Every other pin of NetBox's is kept.
COPY deploy/netbox/netbox_requirements.py /src/
RUN python3.13 -m venv /opt/netbox/venv \
 && pip install --no-deps "netbox==${NETBOX_VERSION}" \
 && python /src/netbox_requirements.py >/src/netbox-requirements.txt
RUN pip install -r /src/netbox-requirements.txt "whitenoise==${WHITENOISE_VERSION}"
# The plugin: built as a wheel, installed from it (non-editable), like a user's `pip install`.
COPY netbox-plugin /src/netbox-plugin
RUN pip wheel --no-deps --wheel-dir /src/wheels /src/netbox-plugin \
 && pip install --no-deps /src/wheels/netbox_unicop-*.whl
COPY deploy/netbox/configuration.py deploy/netbox/gunicorn.py deploy/netbox/static_wsgi.py \
     deploy/netbox/container.py deploy/netbox/accounts.py /src/conf/
RUN netbox setup --target /opt/netbox >/dev/null \
 && cp /src/conf/configuration.py /opt/netbox/conf/configuration.py \
 && cp /src/conf/gunicorn.py /src/conf/static_wsgi.py /src/conf/container.py /src/conf/accounts.py /opt/netbox/ \
 && NETBOX_SECRET_KEY_BUILD=collectstatic-only-not-a-secret-0123456789abcdefghijklmnop \
    netbox collectstatic --no-input >/dev/null \
 && python -m compileall -q /opt/netbox/venv/lib /opt/netbox/*.py >/dev/null

FROM python AS runtime
RUN groupadd --system --gid 10002 netbox \
 && useradd --system --uid 10002 --gid netbox --home-dir /opt/netbox --shell /usr/sbin/nologin netbox
COPY --from=build /opt/netbox /opt/netbox
COPY deploy/netbox/entrypoint.sh /usr/local/bin/netbox-unicop
RUN mkdir -p /opt/netbox/media /opt/netbox/reports /opt/netbox/scripts \
 && chown -R netbox:netbox /opt/netbox/media /opt/netbox/reports /opt/netbox/scripts
WORKDIR /opt/netbox
USER netbox
VOLUME ["/opt/netbox/media"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=10s --start-period=600s --retries=3 CMD ["netbox-unicop", "healthcheck"]
ENTRYPOINT ["netbox-unicop"]
CMD ["web"]
