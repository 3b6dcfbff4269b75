"""The embedded default's channel layer: Channels' in-memory layer, made safe to
publish to from other threads.

In one `runplatform` process the websocket consumers wait on the ASGI server's event
loop, while services publish from elsewhere: the embedded Celery worker's threads, the
serving plane, beat. Each of those runs `async_to_sync(group_send)` on a loop of its
own, and asyncio.Queue is not thread-safe: the put lands in the queue but wakes no
waiter, so the browser heard of it only when the server loop woke for something else
(the next ping, seconds later) and a job page read "Queued" through a whole run.
Here every layer operation from a foreign loop is handed to the loop the consumers
receive on."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from channels.layers import InMemoryChannelLayer

HANDOFF_TIMEOUT = 5.0


class ThreadSafeInMemoryChannelLayer(InMemoryChannelLayer):
    _home: asyncio.AbstractEventLoop | None = None

    async def _at_home(self, operation: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        home = self._home
        if home is None or home is asyncio.get_running_loop() or not home.is_running():
            return await operation(*args)
        future = asyncio.run_coroutine_threadsafe(operation(*args), home)
        return await asyncio.wait_for(asyncio.wrap_future(future), HANDOFF_TIMEOUT)

    async def receive(self, channel):
        self._home = asyncio.get_running_loop()
        return await super().receive(channel)

    async def send(self, channel, message):
        return await self._at_home(super().send, channel, message)

    async def group_send(self, group, message):
        return await self._at_home(super().group_send, group, message)

    async def group_add(self, group, channel):
        return await self._at_home(super().group_add, group, channel)

    async def group_discard(self, group, channel):
        return await self._at_home(super().group_discard, group, channel)
