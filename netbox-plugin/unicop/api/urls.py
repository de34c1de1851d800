from django.urls import path
from netbox.api.routers import NetBoxRouter

from . import global_freeze, rollouts, schema, views  # noqa: F401  (schema: what /api/schema/ says of these views)

router = NetBoxRouter()
router.APIRootView = views.UnicopRootView
router.register('roots', views.RootViewSet)
router.register('runs', views.ReconciliationRunViewSet)

urlpatterns = [
    path('resolve/', views.ResolveView.as_view(), name='resolve'),
    path('global-freeze/', global_freeze.GlobalFreezeView.as_view(), name='global_freeze'),
    path('rollouts/', rollouts.RolloutListView.as_view(), name='rollout_list'),
    path('rollouts/outcome/', rollouts.RolloutOutcomeView.as_view(), name='rollout_outcome'),
    path('rollouts/gate/', rollouts.RolloutGateBatchView.as_view(), name='rollout_gate'),
    path('rollouts/live/', rollouts.RolloutLiveView.as_view(), name='rollout_live'),
    path('rollouts/<str:rollout_id>/', rollouts.RolloutDetailView.as_view(), name='rollout_detail'),
    path(
        'rollouts/<str:rollout_id>/resume/',
        rollouts.RolloutDecisionView.as_view(decision='resume'),
        name='rollout_resume',
    ),
    path(
        'rollouts/<str:rollout_id>/abort/',
        rollouts.RolloutDecisionView.as_view(decision='abort'),
        name='rollout_abort',
    ),
    *router.urls,
]
