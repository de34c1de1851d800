from netbox.plugins import PluginMenuItem

menu_items = (
    PluginMenuItem(link='plugins:unicop:root_list', link_text='Roots', permissions=['unicop.view_root']),
    PluginMenuItem(
        link='plugins:unicop:reconciliationrun_list',
        link_text='Reconciliation runs',
        permissions=['unicop.view_reconciliationrun'],
    ),
    PluginMenuItem(
        link='plugins:unicop:rollout_list', link_text='Rollouts', permissions=['unicop.view_rollout']
    ),
)
