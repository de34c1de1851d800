"""configuration_unicop plus DEVELOPER = True, for `netbox makemigrations unicop` (NetBox refuses it
otherwise). Usage: netbox-plugin/testing/makemigrations."""

from configuration_unicop import *  # noqa: F403

DEVELOPER = True
