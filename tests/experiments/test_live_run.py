"""The run websocket: whoever may view a run hears its events; others are refused."""

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing.websocket import WebsocketCommunicator
import pytest

from experiments import services
from mlplatform.asgi import application
from tests.factories import UserFactory
from tests.jobs.test_live import headers_for

pytestmark = pytest.mark.django_db(transaction=True)


def _connect(path, headers):
    async def scenario():
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await communicator.connect(timeout=5)
        await communicator.disconnect()
        return connected, code

    return async_to_sync(scenario)()


def test_a_viewer_hears_the_runs_events_and_others_are_refused(project, user):
    experiment = services.experiment_create(project=project, name="live", user=user)
    run = services.run_create(experiment=experiment, user=user)
    assert _connect(f"/ws/runs/{run.pk}/", headers_for(UserFactory())) == (False, 4403)
    assert _connect(f"/ws/runs/{'0' * 32}/", headers_for(user)) == (False, 4403)

    headers = headers_for(user)

    async def member():
        communicator = WebsocketCommunicator(application, f"/ws/runs/{run.pk}/", headers=headers)
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await database_sync_to_async(services.run_log_batch)(run=run, metrics=[("loss", 0.5, 1, 10)])
        metrics = await communicator.receive_json_from(timeout=5)
        await database_sync_to_async(services.run_update)(run=run, status="FINISHED", end_time=20)
        updated = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return metrics, updated

    metrics, updated = async_to_sync(member)()
    assert metrics == {"event": "run.metrics", "payload": {"run_id": run.pk, "keys": ["loss"]}}
    assert updated["event"] == "run.updated" and updated["payload"]["status"] == "FINISHED"
