from django.urls import path

from data.consumers import StreamConsumer, StreamListConsumer
from deployments.consumers import EndpointDashboardConsumer
from experiments.consumers import RunConsumer
from ideation.consumers import BoardConsumer
from jobs.consumers import JobConsumer, JobListConsumer
from mlplatform.consumers import NotificationsConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationsConsumer.as_asgi()),
    path("ws/boards/<int:board_id>/", BoardConsumer.as_asgi()),
    path("ws/jobs/", JobListConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
    path("ws/endpoints/<str:slug>/", EndpointDashboardConsumer.as_asgi()),
    path("ws/runs/<str:run_id>/", RunConsumer.as_asgi()),
    path("ws/streams/", StreamListConsumer.as_asgi()),
    path("ws/streams/<str:project>/<str:stream>/", StreamConsumer.as_asgi()),
]
