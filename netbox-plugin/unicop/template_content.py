from django.contrib.contenttypes.models import ContentType
from netbox.plugins import PluginTemplateExtension

from . import global_freeze
from .models import Root
from .roots import root_policy


class AnchorRootPanel(PluginTemplateExtension):
    """On an anchor object's page (site, prefix, any catalogue anchor): its root's state and last run."""

    def right_page(self):
        obj = self.context['object']
        request = self.context['request']
        if not request.user.has_perm('unicop.view_root'):
            return ''
        roots = (
            Root.objects.restrict(request.user, 'view')
            .filter(anchor_type=ContentType.objects.get_for_model(obj), anchor_id=obj.pk)
            .select_related('last_run')
        )
        roots = list(roots)
        for root in roots:
            # An override in the anchor's unicop_policy that cannot be run (docs/decisions/0062).
            root.policy_error = root_policy(root)[1]
        return self.render('unicop/inc/anchor_panel.html', extra_context={'roots': roots})


class AnchorPanel(AnchorRootPanel):
    # The built-in anchors. Kinds declared in PLUGINS_CONFIG with other anchor types get no panel yet.
    models = ['dcim.site', 'ipam.prefix']


class GlobalFreezeBanner(PluginTemplateExtension):
    """On every NetBox page (in the top bar), for whoever may see roots: automation frozen globally, by
    whom and why (the bridge's mirror of unicop.control, global_freeze.py)."""

    def navbar(self):
        request = self.context.get('request')
        if request is None or not request.user.has_perm('unicop.view_root'):
            return ''
        held = global_freeze.current()
        if not held or not held['frozen']:
            return ''
        return self.render('unicop/inc/global_freeze_banner.html', extra_context={'freeze': held})


template_extensions = [AnchorPanel, GlobalFreezeBanner]
