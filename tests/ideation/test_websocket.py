"""The board's websocket: who may join, presence, and changes reaching participants."""

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.conf import settings
from django.test import Client
import pytest

from ideation import services
from mlplatform.asgi import application
from tests.factories import UserFactory
from tests.ideation.conftest import checked

pytestmark = pytest.mark.django_db(transaction=True)


def _headers(user):
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}"
    return [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), (b"cookie", cookie.encode())]


async def _receive_until(communicator, event: str) -> dict:
    while True:
        message = await communicator.receive_json_from(timeout=5)
        if message["event"] == event:
            return message["payload"]


def test_a_non_member_joining_the_boards_websocket_is_refused(board):
    headers = _headers(UserFactory())

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/boards/{board.pk}/", headers=headers)
        connected, code = await communicator.connect(timeout=5)
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(scenario)() == (False, 4403)


def test_participants_see_presence_and_each_others_changes(board, facilitator, stakeholder):
    headers_a, headers_b = _headers(facilitator), _headers(stakeholder)

    async def scenario():
        a = WebsocketCommunicator(application, f"/ws/boards/{board.pk}/", headers=headers_a)
        b = WebsocketCommunicator(application, f"/ws/boards/{board.pk}/", headers=headers_b)
        assert (await a.connect(timeout=5))[0]
        assert (await _receive_until(a, "presence"))["users"] == ["fran"]
        assert (await b.connect(timeout=5))[0]
        assert (await _receive_until(a, "presence"))["users"] == ["fran", "sam"]

        def add_and_vote():
            b_board = checked(board, stakeholder, "participate")
            idea = services.idea_create(board=b_board, actor=stakeholder, title="<i>live</i>")
            services.vote_add(board=b_board, actor=stakeholder, idea_id=idea.pk)

        await database_sync_to_async(add_and_vote)()
        created = await _receive_until(a, "idea.created")
        voted = await _receive_until(a, "vote.changed")
        await b.disconnect()
        left = await _receive_until(a, "presence")
        await a.disconnect()
        return created, voted, left

    created, voted, left = async_to_sync(scenario)()
    assert created["title"] == "<i>live</i>" and created["by"] == "sam"
    assert voted["votes"] == 1
    assert left["users"] == ["fran"]
