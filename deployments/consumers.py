"""The endpoint dashboard over a websocket: timeline events as they happen (published
by deployments.services) and a metrics snapshot with its figures every 2 seconds."""

import asyncio
import contextlib

from channels.db import database_sync_to_async

from deployments import dashboard, selectors
from deployments.api import metrics_snapshot
from deployments.services import endpoint_group
from mlplatform.consumers import LiveConsumer
from mlplatform.errors import ApplicationError

PUSH_INTERVAL = 2.0


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

    async def _push(self) -> None:
        while True:
            payload = await database_sync_to_async(self._snapshot)()
            await self.send_json({"event": "metrics", "payload": payload})
            await asyncio.sleep(PUSH_INTERVAL)

    def _snapshot(self) -> dict:
        self.endpoint.refresh_from_db()
        snapshot = metrics_snapshot(self.endpoint)
        snapshot["figures"] = dashboard.figures(snapshot, psi_threshold=self.endpoint.policy.get("max_psi", 0.2))
        return snapshot
