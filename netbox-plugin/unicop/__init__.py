"""UNICOP NetBox plugin: bounded, per-root reconciliation of NetBox state (see docs/)."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

from netbox.plugins import PluginConfig

try:
    __version__ = _dist_version('netbox-unicop')
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = '0.0.0'


class UnicopConfig(PluginConfig):
    name = 'unicop'
    verbose_name = 'UNICOP'
    description = 'Bounded, per-root reconciliation of NetBox state through AWX'
    version = __version__
    author = 'UNICOP'
    base_url = 'unicop'
    min_version = '4.7.0'
    required_settings = []
    default_settings = {
        # Root kinds over the built-in `prefix` and `site` (unicop/catalogue.py, docs/decisions/0020).
        'root_kinds': {},
        # Where docs/runbooks/ is served, for the runbook links of failed runs (unicop/runbooks.py);
        # by default the path inside the repository.
        'runbooks_url': 'docs/runbooks/',
        # Policy keys a root's unicop_policy override may loosen (none: overrides only tighten, 0068).
        'override_may_loosen': [],
    }

    def ready(self):
        super().ready()
        from .catalogue import load_catalogue
        from .policy_overrides import may_loosen
        from .signals import connect

        load_catalogue()  # ImproperlyConfigured, naming the field, on a bad catalogue
        may_loosen()  # ImproperlyConfigured on a bad override_may_loosen
        connect()


config = UnicopConfig
