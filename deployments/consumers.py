"""The endpoint dashboard over a websocket: timeline events as they happen (published
by deployments.services) and a snapshot (metrics, figures, routing and revision states)
when the socket opens, every 2 seconds, and at once after each timeline event, so the
page's cards and actions never show a state the endpoint has left."""

import asyncio
import contextlib

from channels.db import database_sync_to_async

from deployments import dashboard, selectors
from deployments.api import metrics_snapshot
from deployments.models import Endpoint
from deployments.services import endpoint_group
from mlplatform.consumers import LiveConsumer
from mlplatform.errors import ApplicationError

PUSH_INTERVAL = 2.0
REVISIONS_SHOWN = 20


class EndpointDashboardConsumer(LiveConsumer):
    def groups_for(self, user):
        try:
            self.endpoint = selectors.endpoint_get(user=user, slug=self.scope["url_route"]["kwargs"]["slug"])
        except ApplicationError:
            return None
        self.project_ids = {self.endpoint.project_id}
        return [endpoint_group(self.endpoint)]

    async def on_joined(self, user) -> None:
        self.pusher = asyncio.create_task(self._push())

    async def disconnect(self, code):
        pusher = getattr(self, "pusher", None)
        if pusher is not None:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher
        await super().disconnect(code)

    async def event_message(self, message):
        await super().event_message(message)
        if message["event"] == "endpoint.event":
            await self._send_snapshot()

    async def _push(self) -> None:
        try:
            while True:
                await self._send_snapshot()
                await asyncio.sleep(PUSH_INTERVAL)
        except OSError:  # the browser left between two pushes (the server's ClientDisconnected)
            return

    async def _send_snapshot(self) -> None:
        payload = await database_sync_to_async(self._snapshot)()
        await self.send_json({"event": "metrics", "payload": payload})

    def _snapshot(self) -> dict:
        # A fresh row with fresh revisions: refresh_from_db keeps a cached champion
        # whose id did not change, status and all (the card read "Deploying" long
        # after the revision was ready).
        endpoint = Endpoint.objects.select_related("project", "champion", "challenger").get(pk=self.endpoint.pk)
        snapshot = metrics_snapshot(endpoint)
        snapshot["figures"] = dashboard.figures(snapshot, psi_threshold=endpoint.policy.get("max_psi", 0.2))
        revisions = selectors.revision_list(endpoint=endpoint)[:REVISIONS_SHOWN]
        snapshot["routing"] = dashboard.routing(endpoint, revisions)
        return snapshot
