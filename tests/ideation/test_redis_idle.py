"""A board socket that sat idle longer than the Redis client's default read timeout
(5 s in redis-py 8) still receives events: the channel layer's blocking read must not
be cut by a socket timeout, or every quiet participant is dropped (close 1011)."""

import os
import time

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.conf import settings
from django.test import Client
import pytest

from ideation import services
from mlplatform.asgi import application
from tests.ideation.conftest import checked

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs the Redis channel layer (REDIS_URL)"),
]


def test_an_idle_participant_still_hears_changes(board, facilitator, stakeholder):
    client = Client()
    client.force_login(facilitator)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode()
    headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), (b"cookie", cookie)]

    async def scenario():
        ws = WebsocketCommunicator(application, f"/ws/boards/{board.pk}/", headers=headers)
        assert (await ws.connect(timeout=5))[0]
        await ws.receive_json_from(timeout=5)  # presence
        started = time.monotonic()
        while time.monotonic() - started < 6.5:  # idle past the 5 s default read timeout
            assert await ws.receive_nothing(timeout=0.5)

        def add():
            services.idea_create(board=checked(board, stakeholder), actor=stakeholder, title="after a pause")

        await database_sync_to_async(add)()
        message = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return message

    assert async_to_sync(scenario)()["payload"]["title"] == "after a pause"
