"""The ASGI app: HTTP through Django, websockets through Channels, and model serving.

Paths under /ingest/ go to the HTTP ingest plane (data.plane), the same way: its own
auth (ingest tokens), records acknowledged once they are fsync'd in the archive.
Paths under /serve/ go to the serving data plane (deployments.serving) before Django:
it has its own auth (endpoint tokens), no sessions and no ORM on the request path.
MLflow API calls that authenticate with a header go to the tracking plane
(experiments.mlflow_api.lean): the same views without Django's middleware and
per-request thread; everything else it hands on to Django.

The serving plane starts with the process (ASGI lifespan startup, in the background so
a slow model load never delays the web): a deploy reaches ready or failed on its own,
not when its first caller arrives.

Websockets must come from an allowed Origin (a page of ours, not a foreign site riding
the user's cookies) and carry a session; consumers close anything else."""

import asyncio
import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from data.plane import build_app as build_ingest_app  # noqa: E402
from deployments.plane import build_app  # noqa: E402
from experiments.mlflow_api.lean import TrackingPlane  # noqa: E402
from mlplatform.routing import websocket_urlpatterns  # noqa: E402

serving_app = build_app()
ingest_app = build_ingest_app()
tracking_app = TrackingPlane(fallback=django_asgi_app)


async def http_app(scope, receive, send):
    if scope["path"].startswith("/serve/"):
        await serving_app(scope, receive, send)
    elif scope["path"].startswith("/ingest/"):
        await ingest_app(scope, receive, send)
    elif tracking_app.wants(scope):
        await tracking_app(scope, receive, send)
    else:
        await django_asgi_app(scope, receive, send)


router = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

logger = logging.getLogger(__name__)
_background: set[asyncio.Task] = set()


async def _start_serving() -> None:
    try:
        await serving_app.startup()
    except Exception:
        logger.exception("the serving plane did not start; it retries on the first /serve/ request")


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            task = asyncio.get_running_loop().create_task(_start_serving())
            _background.add(task)
            task.add_done_callback(_background.discard)
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if serving_app._started is not None:
                await serving_app.shutdown()
            await ingest_app.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    else:
        await router(scope, receive, send)
