from django.urls import include, path
from utilities.urls import get_model_urls

from . import rollout_pages, views  # noqa: F401  (rollout_pages registers the rollouts' views)

urlpatterns = [
    path('roots/', include(get_model_urls('unicop', 'root', detail=False))),
    path('roots/<int:pk>/', include(get_model_urls('unicop', 'root'))),
    path('roots/<int:pk>/freeze/', views.RootFreezeView.as_view(frozen=True), name='root_freeze'),
    path('roots/<int:pk>/unfreeze/', views.RootFreezeView.as_view(frozen=False), name='root_unfreeze'),
    path('runs/', include(get_model_urls('unicop', 'reconciliationrun', detail=False))),
    path('runs/<int:pk>/', include(get_model_urls('unicop', 'reconciliationrun'))),
    path('rollouts/', include(get_model_urls('unicop', 'rollout', detail=False))),
    path('rollouts/<int:pk>/', include(get_model_urls('unicop', 'rollout'))),
]
