"""Issue 13, defect 4: an open websocket does not outlive its access. When a member is
removed from a project, every socket of theirs that shows something of that project
(board, job, job list, run, endpoint dashboard) is closed with 4403 and hears nothing
more; a role change makes them check again; the job list follows the projects the user
may see. Real websockets over the real channel layer (Redis when REDIS_URL is set)."""

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing.websocket import WebsocketCommunicator
from django.conf import settings
from django.test import Client
import pytest

from deployments import services as deployment_services
from experiments import services as experiment_services
from ideation import services as ideation_services
from jobs import events as job_events
from jobs import services as job_services
from mlplatform import events
from mlplatform.asgi import application
from mlplatform.consumers import CLOSE_FORBIDDEN
from mlplatform.roles import Role
from projects import services as project_services
from tests.factories import UserFactory, make_project

pytestmark = pytest.mark.django_db(transaction=True)


def headers_of(user, extra=()):
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}"
    return [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), (b"cookie", cookie.encode()), *extra]


@pytest.fixture
def world(tmp_path, settings):
    """A project with one of everything that has a live page, its owner and a member."""
    settings.DATA_DIR = tmp_path
    owner, member = UserFactory(), UserFactory()
    project = make_project(owner=owner, members={member: Role.STAKEHOLDER})
    board = ideation_services.board_create(actor=owner, title="Workshop", project=project)
    job = job_services.job_submit(project=project, user=owner, script="print(1)", dispatch=False)
    experiment = experiment_services.experiment_get_or_create(project=project, name="train", user=owner)
    run = experiment_services.run_create(experiment=experiment, user=owner)
    endpoint = deployment_services.endpoint_create(project=project, actor=owner, name="Iris")[0]
    sockets = {
        "board": (f"/ws/boards/{board.pk}/", ideation_services.boards.board_group(board.pk)),
        "job": (f"/ws/jobs/{job.pk}/", job_events.job_group(job.pk)),
        "job list": ("/ws/jobs/", job_events.project_group(project.pk)),
        "run": (f"/ws/runs/{run.pk}/", events.group_name("run", run.pk)),
        "endpoint": (f"/ws/endpoints/{endpoint.slug}/", deployment_services.endpoint_group(endpoint)),
    }
    return {"owner": owner, "member": member, "project": project, "sockets": sockets}


async def publish(group: str, n: int) -> None:
    await database_sync_to_async(events.publish)(group, "probe", {"n": n})


async def next_probe_or_close(communicator) -> dict:
    """The next probe event or the close, past presence and metrics pushes."""
    while True:
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            return output
        if '"probe"' in output.get("text", ""):
            return output


async def open_and_hear(path: str, group: str, headers) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    assert connected, code
    await publish(group, 1)
    heard = await next_probe_or_close(communicator)
    assert heard["type"] == "websocket.send" and '"n": 1' in heard["text"]
    return communicator


@pytest.mark.parametrize("kind", ["board", "job", "run", "endpoint"])
def test_removing_a_member_closes_their_open_socket_of_that_project(world, kind):
    """(The job list spans projects: it stays open and leaves the lost one, below.)"""
    path, group = world["sockets"][kind]
    headers = headers_of(world["member"])

    async def scenario():
        communicator = await open_and_hear(path, group, headers)
        await database_sync_to_async(project_services.membership_remove)(
            project=world["project"], username=world["member"].username, actor=world["owner"]
        )
        closed = await next_probe_or_close(communicator)
        await publish(group, 2)
        silent = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return closed, silent

    closed, silent = async_to_sync(scenario)()
    assert closed == {"type": "websocket.close", "code": CLOSE_FORBIDDEN}
    assert silent


def test_other_users_and_other_projects_sockets_stay_open(world):
    path, group = world["sockets"]["job"]
    member, owner = world["member"], world["owner"]
    elsewhere = make_project(owner=member)
    other_job = job_services.job_submit(project=elsewhere, user=member, script="print(2)", dispatch=False)
    owner_headers, member_headers = headers_of(owner), headers_of(member)

    async def scenario():
        owners = await open_and_hear(path, group, owner_headers)
        members_other = await open_and_hear(
            f"/ws/jobs/{other_job.pk}/", job_events.job_group(other_job.pk), member_headers
        )
        await database_sync_to_async(project_services.membership_remove)(
            project=world["project"], username=member.username, actor=owner
        )
        await publish(group, 1)
        await publish(job_events.job_group(other_job.pk), 1)
        heard = [await next_probe_or_close(owners), await next_probe_or_close(members_other)]
        await owners.disconnect()
        await members_other.disconnect()
        return heard

    assert [h["type"] for h in async_to_sync(scenario)()] == ["websocket.send", "websocket.send"]


def test_a_role_change_makes_the_socket_check_again_and_keeps_what_the_role_still_sees(world):
    path, group = world["sockets"]["board"]
    headers = headers_of(world["member"])

    async def scenario():
        communicator = await open_and_hear(path, group, headers)
        await database_sync_to_async(project_services.membership_change_role)(
            project=world["project"], username=world["member"].username, role=Role.VIEWER, actor=world["owner"]
        )
        await publish(group, 2)
        heard = await next_probe_or_close(communicator)
        await communicator.disconnect()
        return heard

    heard = async_to_sync(scenario)()
    assert heard["type"] == "websocket.send" and '"n": 2' in heard["text"]


def test_the_job_list_leaves_a_lost_project_and_joins_a_new_one(world):
    member, owner = world["member"], world["owner"]
    kept = make_project(owner=owner, members={member: Role.VIEWER})
    added = make_project(owner=owner)
    lost_group = job_events.project_group(world["project"].pk)
    headers = headers_of(member)

    async def scenario():
        communicator = await open_and_hear("/ws/jobs/", lost_group, headers)
        await database_sync_to_async(project_services.membership_remove)(
            project=world["project"], username=member.username, actor=owner
        )
        await database_sync_to_async(project_services.membership_add)(
            project=added, username=member.username, role=Role.VIEWER, actor=owner
        )
        await publish(lost_group, 2)
        await publish(job_events.project_group(kept.pk), 3)
        await publish(job_events.project_group(added.pk), 4)
        heard = [await next_probe_or_close(communicator), await next_probe_or_close(communicator)]
        silent = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return [h.get("text", h) for h in heard], silent

    heard, silent = async_to_sync(scenario)()
    assert '"n": 3' in heard[0] and '"n": 4' in heard[1] and silent


def test_a_bearer_token_opens_no_socket_so_a_revoked_one_leaves_none_open(world, token_for):
    """Sockets authenticate with the browser session only: an API token (revoked or
    not) never opens one, so revoking a token has no socket to close."""
    raw = token_for(world["member"])
    path, _group = world["sockets"]["job"]
    headers = [(b"host", b"127.0.0.1"), (b"origin", b"http://127.0.0.1"), (b"authorization", f"Bearer {raw}".encode())]

    async def scenario():
        communicator = WebsocketCommunicator(application, path, headers=headers)
        result = await communicator.connect(timeout=5)
        await communicator.disconnect()
        return result

    assert async_to_sync(scenario)() == (False, 4401)
