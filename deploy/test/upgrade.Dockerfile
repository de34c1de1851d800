# The deploy suite's "new release" of netbox-unicop (scripts/suites.d/40-deploy.sh, check 8): the
# image under test plus one more plugin migration, as an upgrade of the plugin would bring. The
# web command's `netbox upgrade` must apply it to the existing database on the next start.
ARG BASE=localhost/netbox-unicop:latest
FROM ${BASE}
COPY --chown=netbox:netbox 9999_deploy_upgrade_check.py /tmp/
USER root
RUN cp /tmp/9999_deploy_upgrade_check.py \
      "$(python -c 'import pathlib, unicop.migrations as m; print(pathlib.Path(m.__file__).parent)')/" \
 && rm /tmp/9999_deploy_upgrade_check.py
USER netbox
