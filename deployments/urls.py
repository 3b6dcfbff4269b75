from django.urls import path

from deployments import api

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
]
