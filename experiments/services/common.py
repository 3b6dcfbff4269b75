import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import Model

from mlplatform import events

logger = logging.getLogger(__name__)


def now_ms() -> int:
    return int(time.time() * 1000)


def publish_run(run: Model, event: str, payload: dict) -> None:
    """Tell run pages and experiment tables, after commit. Both groups go out in one
    hop to the event loop rather than one each (events.publish): run creation is on the
    tracking hot path."""
    message = {"type": events.EVENT_MESSAGE, "event": event, "payload": payload}
    groups = [events.group_name("run", run.pk), events.group_name("experiment", run.experiment_id)]
    transaction.on_commit(lambda: _send_all(groups, message))


def _send_all(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return

    async def send() -> None:
        for group in groups:
            await layer.group_send(group, {**message, "group": group})

    try:
        async_to_sync(send)()
    except Exception:  # a dead channel layer must not fail the change that committed
        logger.exception("publishing %s to %s failed", message.get("event"), groups)
