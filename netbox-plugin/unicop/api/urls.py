from django.urls import path
from netbox.api.routers import NetBoxRouter

from . import schema, views  # noqa: F401  (schema: what /api/schema/ says of these views)

router = NetBoxRouter()
router.APIRootView = views.UnicopRootView
router.register('roots', views.RootViewSet)
router.register('runs', views.ReconciliationRunViewSet)

urlpatterns = [
    path('resolve/', views.ResolveView.as_view(), name='resolve'),
    *router.urls,
]
