"""/healthz: is each part the platform needs reachable right now?"""

import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from mlplatform.celery import app as celery_app


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
        result = {"ok": True, **(detail or {})}
    except Exception as exc:  # each failure is reported, not raised: that is the point
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def check_broker() -> dict:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return {"transport": conn.transport_cls if isinstance(conn.transport_cls, str) else conn.transport.driver_type}


def check_channel_layer() -> dict:
    layer = get_channel_layer()
    channel = f"healthz.{uuid.uuid4().hex}"

    async def roundtrip():
        await layer.send(channel, {"type": "healthz.ping"})
        return await layer.receive(channel)

    message = async_to_sync(roundtrip)()
    if message.get("type") != "healthz.ping":
        raise RuntimeError("channel layer returned a different message")
    return {"backend": type(layer).__name__}


@require_GET
def healthz(request):
    checks = {
        "database": _timed(check_database),
        "broker": _timed(check_broker),
        "channel_layer": _timed(check_channel_layer),
    }
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "degraded", "checks": checks}, status=200 if healthy else 503)
