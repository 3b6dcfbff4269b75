"""Websocket handshakes need a session and one of our Origins; published events
arrive after commit."""

from asgiref.sync import async_to_sync
from channels.testing.websocket import WebsocketCommunicator
from django.conf import settings
from django.test import Client
import pytest

from mlplatform import events
from mlplatform.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def _headers(session_key=None, origin="http://127.0.0.1"):
    headers = [(b"host", b"127.0.0.1"), (b"origin", origin.encode())]
    if session_key:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session_key}".encode()))
    return headers


async def _connect(headers):
    communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


def _session_key(user):
    client = Client()
    client.force_login(user)
    return client.session.session_key


def test_handshake_without_a_session_is_refused():
    async def scenario():
        communicator, connected, code = await _connect(_headers())
        await communicator.disconnect()
        return connected, code

    connected, code = async_to_sync(scenario)()
    assert not connected and code == 4401


def test_handshake_from_a_foreign_origin_is_refused(user):
    key = _session_key(user)

    async def scenario():
        communicator, connected, _ = await _connect(_headers(key, origin="http://evil.example.com"))
        await communicator.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


def test_events_reach_the_users_group_after_commit(user):
    key = _session_key(user)

    async def scenario():
        communicator, connected, _ = await _connect(_headers(key))
        assert connected
        from channels.db import database_sync_to_async

        await database_sync_to_async(events.publish)(events.group_name("user", user.pk), "ping", {"n": 1})
        message = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return message

    assert async_to_sync(scenario)() == {"event": "ping", "payload": {"n": 1}}
