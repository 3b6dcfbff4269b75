from django.urls import path

from ideation.consumers import BoardConsumer
from mlplatform.consumers import NotificationsConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationsConsumer.as_asgi()),
    path("ws/boards/<int:board_id>/", BoardConsumer.as_asgi()),
]
