from django.http import JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularSwaggerView

from deployments import api
from deployments.serving.openapi import serving_schema


@require_GET
def serving_schema_view(request):
    """The serving plane's OpenAPI document (public, like /api/v1/schema/)."""
    return JsonResponse(serving_schema(), json_dumps_params={"indent": 1})


urlpatterns = [
    path("endpoints/", api.EndpointListApi.as_view(), name="api-endpoints"),
    path("endpoints/<str:slug>/", api.EndpointDetailApi.as_view(), name="api-endpoint"),
    path("endpoints/<str:slug>/token/", api.EndpointTokenApi.as_view(), name="api-endpoint-token"),
    path("endpoints/<str:slug>/revisions/", api.RevisionListApi.as_view(), name="api-endpoint-revisions"),
    path("endpoints/<str:slug>/traffic/", api.TrafficApi.as_view(), name="api-endpoint-traffic"),
    path("endpoints/<str:slug>/promote/", api.PromoteApi.as_view(), name="api-endpoint-promote"),
    path("endpoints/<str:slug>/rollback/", api.RollbackApi.as_view(), name="api-endpoint-rollback"),
    path("endpoints/<str:slug>/metrics/", api.MetricsApi.as_view(), name="api-endpoint-metrics"),
    path("endpoints/<str:slug>/events/", api.EventListApi.as_view(), name="api-endpoint-events"),
    path("serving/schema/", serving_schema_view, name="api-serving-schema"),
    path("serving/docs/", SpectacularSwaggerView.as_view(url_name="api-serving-schema"), name="api-serving-docs"),
]
