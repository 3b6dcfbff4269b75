"""Live updates: services publish, consumers forward.

`publish` sends only after the surrounding transaction commits, so a browser never
hears of a change that was rolled back, and never before it can read it.
"""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

# The message type every consumer handles; Channels maps "event.message" to the
# consumer method `event_message`.
EVENT_MESSAGE = "event.message"


def group_name(kind: str, key: object) -> str:
    """The one place group names are made: `board.12`, `job.7`, `user.3`."""
    return f"{kind}.{key}"


def publish(group: str, event: str, payload: dict[str, Any]) -> None:
    message = {"type": EVENT_MESSAGE, "event": event, "payload": payload}
    transaction.on_commit(lambda: send_now(group, message))


def send_now(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # The group rides along so a socket that left it since can drop what was queued.
        async_to_sync(layer.group_send)(group, {**message, "group": group})
    except Exception:  # a dead channel layer must not fail the change that committed
        logger.exception("publishing %s to %s failed", message.get("event"), group)


# Sent to a user's access group when what the user may see changed (a membership added,
# removed or given another role): each of their open sockets checks again and closes,
# or leaves the groups it may no longer hear.
ACCESS_CHANGED = "access.changed"


def access_group(user_id: int) -> str:
    return group_name("access", user_id)


def access_changed(*, user_id: int, project_id: int | None = None) -> None:
    """After commit, so that the sockets' check reads the change."""
    message = {"type": ACCESS_CHANGED, "project_id": project_id}
    transaction.on_commit(lambda: send_now(access_group(user_id), message))
