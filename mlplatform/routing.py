from django.urls import path

from deployments.consumers import EndpointDashboardConsumer
from mlplatform.consumers import NotificationsConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationsConsumer.as_asgi()),
    path("ws/endpoints/<str:slug>/", EndpointDashboardConsumer.as_asgi()),
]
