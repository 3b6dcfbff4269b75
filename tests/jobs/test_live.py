"""The job websocket: members get the job's log lines live; others are refused."""

from asgiref.sync import async_to_sync
from channels.testing.websocket import WebsocketCommunicator
from django.conf import settings
from django.test import Client
import pytest

from jobs.services import job_log_append
from mlplatform.asgi import application
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def headers_for(user):
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}".encode()
    return [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), (b"cookie", cookie)]


def test_a_member_receives_log_lines_and_a_stranger_is_refused(submit):
    job = submit()
    owner_headers = headers_for(job.created_by)
    stranger_headers = headers_for(UserFactory())

    async def stranger():
        communicator = WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/", headers=stranger_headers)
        connected, code = await communicator.connect(timeout=5)
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(stranger)() == (False, 4403)

    async def member():
        communicator = WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/", headers=owner_headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        from channels.db import database_sync_to_async

        # A page that (re)connects is told the job's status first, so it never shows a stale one.
        greeting = await communicator.receive_json_from(timeout=5)
        assert greeting["event"] == "job.status" and greeting["payload"]["snapshot"] is True
        await database_sync_to_async(job_log_append)(job=job, start_seq=0, lines=["hi token=abc"], secrets=["abc"])
        message = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return message

    message = async_to_sync(member)()
    assert message["event"] == "job.log" and message["payload"]["lines"] == ["hi token=****"]
