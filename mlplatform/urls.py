from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from mlplatform.forms import LoginView
from mlplatform.health import healthz

api_v1 = [
    path("", include("projects.urls")),
    path("", include("ideation.urls")),
    path("", include("jobs.urls")),
    path("", include("mlplatform.api.urls")),
    path("", include("experiments.urls")),
    path("", include("registry.urls")),
    path("", include("deployments.urls")),
    path("", include("data.urls")),
    path("", include("data.urls_datasets")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include(api_v1)),
    path("", include("experiments.mlflow_urls")),
    path("", include("frontend.urls_datasets")),
    path("", include("frontend.urls")),
]
