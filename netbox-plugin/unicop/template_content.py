from django.contrib.contenttypes.models import ContentType
from netbox.plugins import PluginTemplateExtension

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


template_extensions = [AnchorPanel]
