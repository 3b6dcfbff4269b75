"""The Data pages over websockets: every 2 seconds, the numbers of the streams a user
may see (the list), or one stream's numbers, rate figure, latest records and held
quarantine (the stream page). Counters come from the ingest processes' flushes."""

import asyncio
import contextlib

from channels.db import database_sync_to_async

from data import live, selectors
from mlplatform import events
from mlplatform.consumers import LiveConsumer
from mlplatform.errors import ApplicationError

PUSH_INTERVAL = 2.0


class _Pushing(LiveConsumer):
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
            payload = await database_sync_to_async(self.snapshot)()
            await self.send_json({"event": self.event, "payload": payload})
            await asyncio.sleep(PUSH_INTERVAL)

    def snapshot(self) -> dict:
        raise NotImplementedError


class StreamListConsumer(_Pushing):
    event = "streams"

    def groups_for(self, user):
        self.user = user
        return [events.group_name("streams-of", user.pk)]

    def snapshot(self) -> dict:
        return live.list_snapshot(list(selectors.stream_list(user=self.user)))


class StreamConsumer(_Pushing):
    event = "stream"

    def groups_for(self, user):
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            self.stream = selectors.stream_get(user=user, project_slug=kwargs["project"], slug=kwargs["stream"])
        except ApplicationError:
            return None
        return [events.group_name("stream", self.stream.pk)]

    def snapshot(self) -> dict:
        return live.stream_snapshot(self.stream)
