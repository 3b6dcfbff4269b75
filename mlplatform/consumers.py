"""The base of every live page's consumer: authenticate, join groups, forward.

Subclasses say which groups a connection may join (`groups_for`), checking the user's
access there; everything published with mlplatform.events reaches the browser as
`{"event": ..., "payload": ...}`."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from mlplatform import events, jsondepth

CLOSE_BAD_MESSAGE = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class LiveConsumer(AsyncJsonWebsocketConsumer):
    joined: list[str]

    async def connect(self):
        self.joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        groups = await database_sync_to_async(self.groups_for)(user)
        if groups is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        await self.accept()
        await self.on_joined(user)

    async def disconnect(self, code):
        for group in getattr(self, "joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    def groups_for(self, user) -> list[str] | None:
        """Groups this user may join on this connection, or None to refuse it."""
        raise NotImplementedError

    async def on_joined(self, user) -> None:
        """Hook for consumers that greet a new connection (presence, a snapshot)."""

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """A message that is not JSON, or nests too deep to parse safely, closes the
        socket with 4400 instead of crashing the consumer."""
        if text_data is None:
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        try:
            content = jsondepth.loads(text_data)
        except ValueError:
            await self.close(code=CLOSE_BAD_MESSAGE)
            return
        await self.receive_json(content, **kwargs)

    async def event_message(self, message):
        await self.send_json({"event": message["event"], "payload": message["payload"]})


class NotificationsConsumer(LiveConsumer):
    """A user's own notifications: automatic actions, invitations, finished jobs."""

    def groups_for(self, user):
        return [events.group_name("user", user.pk)]
