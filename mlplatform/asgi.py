"""The ASGI app: HTTP through Django, websockets through Channels, and model serving.

Paths under /serve/ go to the serving data plane (deployments.serving) before Django:
it has its own auth (endpoint tokens), no sessions and no ORM on the request path.
MLflow API calls that authenticate with a header go to the tracking plane
(experiments.mlflow_api.lean): the same views without Django's middleware and
per-request thread; everything else it hands on to Django.

Websockets must come from an allowed Origin (a page of ours, not a foreign site riding
the user's cookies) and carry a session; consumers close anything else."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from deployments.plane import build_app  # noqa: E402
from experiments.mlflow_api.lean import TrackingPlane  # noqa: E402
from mlplatform.routing import websocket_urlpatterns  # noqa: E402

serving_app = build_app()
tracking_app = TrackingPlane(fallback=django_asgi_app)


async def http_app(scope, receive, send):
    if scope["path"].startswith("/serve/"):
        await serving_app(scope, receive, send)
    elif tracking_app.wants(scope):
        await tracking_app(scope, receive, send)
    else:
        await django_asgi_app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
